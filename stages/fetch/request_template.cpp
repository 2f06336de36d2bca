#include "stages/fetch/request_template.h"

#include <cctype>

#include <simdjson.h>

#include "engine/json_scan.h"
#include "engine/json_writer.h"
#include "net/http/memory_body.h"
#include "net/http/url_check.h"
#include "run/checkpoint.h"
#include "run/dead_letters.h"
#include "run/run_context.h"
#include "stages/expr_config.h"
#include "stages/fetch/fetch_request.h"
#include "stages/fetch/ledger_follower.h"
#include "engine/json_memory.h"

namespace aetl {
namespace {

void url_encode(std::string_view s, std::string& out) {
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
}

}  // namespace

std::string render_template(const Template& t, expr::Evaluator& eval, Encode encode) {
  // A URL template that is one expression alone (`{url}`) takes the value as the
  // whole URL: encoding it would turn "https://" into "https%3A%2F%2F".
  if (encode == Encode::url && t.pieces.size() == 1 && t.pieces[0].expr >= 0) encode = Encode::none;
  std::string out;
  std::string tmp;
  for (const auto& p : t.pieces) {
    if (p.expr < 0) {
      out += p.text;
      continue;
    }
    expr::Value v = eval.eval(static_cast<size_t>(p.expr));
    std::string_view text;
    if (v.type == expr::Value::Type::string) {
      text = v.s;
    } else if (v.type == expr::Value::Type::null) {
      text = "";
    } else {
      tmp.clear();
      expr::append_value_json(v, tmp);
      text = tmp;
    }
    if (encode == Encode::url) url_encode(text, out);
    else out += text;
  }
  return out;
}

std::string record_with_field(const std::string& record, const std::string& into, const std::string& into_json,
                       const std::string& value) {
  std::string out;
  out.reserve(record.size() + value.size() + into_json.size() + 2);
  out += '{';
  bool first = true;
  bool placed = false;
  for_each_member(record, 0, [&](const JsonMember& m) {
    if (!first) out += ',';
    first = false;
    if (json_unescape(m.raw_key) == into) {
      out += into_json;
      out += value;
      placed = true;
    } else {
      out.append(record, m.begin, m.value_end - m.begin);
    }
  });
  if (!placed) {
    if (!first) out += ',';
    out += into_json;
    out += value;
  }
  out += '}';
  return out;
}

void read_concurrency(ConfigReader& r, AttemptLimits& limits) {
  const ConfigValue* v = r.raw("concurrency");
  if (v && v->is_scalar() && v->scalar == "auto") {
    limits.adaptive = true;
    limits.concurrency = kAdaptiveConcurrencyMax;
    return;
  }
  if (auto n = r.integer("concurrency", 1, 10000)) limits.concurrency = static_cast<size_t>(*n);
}

std::string response_value(const Attempted& attempted, const std::string& body) {
  const HttpResponse& resp = attempted.response;
  std::string error = attempt_error(attempted);
  std::string value;
  JsonWriter w(value);
  w.begin_object();
  w.key("status").number(static_cast<int64_t>(resp.status));
  w.key("ok").boolean(is_success(resp));
  w.key("body");
  bool is_json = false;
  if (!body.empty()) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    auto e = parse_or_throw(parser, [&] { return parser.parse(body).get(root); });
    is_json = !e;
    if (is_json) w.raw(simdjson::minify(root));
  }
  if (!is_json) {
    if (body.empty()) w.null();
    else w.string(body);
  }
  if (error.empty()) w.key("error").null();
  else w.key("error").string(error);
  w.key("attempts").number(static_cast<int64_t>(attempted.attempts));
  w.key("time_ms").number(resp.total_ms, 1);
  w.end_object();
  return value;
}

/// Parses "a/{id}/b?x={lower(name)}" — `{{` and `}}` are literal braces.
std::optional<Template> parse_template(const ConfigString& s, expr::Program& program, ConfigProblems& problems,
                                       const std::string& what) {
  Template t;
  std::string lit;
  const std::string& text = s.text;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      lit += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      lit += '}';
      ++i;
    } else if (c == '{') {
      size_t close = text.find('}', i);
      if (close == std::string::npos) {
        problems.add(s.at(i), what + ": '{' without a closing '}'");
        return std::nullopt;
      }
      if (!lit.empty()) t.pieces.push_back({std::move(lit), -1});
      lit.clear();
      ConfigString inner = s;
      inner.text = text.substr(i + 1, close - i - 1);
      inner.column_shift = s.column_shift + static_cast<int>(i + 1);
      auto index = compile_expression(program, inner, problems, what);
      if (!index) return std::nullopt;
      t.pieces.push_back({{}, static_cast<int>(*index)});
      i = close;
    } else {
      lit += c;
    }
  }
  if (!lit.empty()) t.pieces.push_back({std::move(lit), -1});
  return t;
}


class RequestTemplates::Job final : public FetchJob {
 public:
  Job(RequestTemplates& mode, Record record) : record_(std::move(record)), mode_(mode) {}
  const HttpRequest& request() const override { return request_; }
  BodyConsumer* body() override { return &body_; }

  asio::awaitable<Finished> finish(const Attempted& attempted) override {
    const FetchConfig& cfg = *mode_.cfg_;
    const HttpResponse& resp = attempted.response;
    Finished f;
    bool ok = is_success(resp);
    f.outcome = ok ? Outcome::ok : is_retryable(resp) ? Outcome::failed_retry : Outcome::failed;
    if (!ok && !cfg.keep_failures) {
      mode_.fail(std::move(record_), attempt_error(attempted), attempted.attempts);
      co_return f;
    }
    std::string value = response_value(attempted, body_.data);
    Record out;
    out.pos = record_.pos;
    out.part = record_.part;
    out.data = record_with_field(record_.data, cfg.into, cfg.into_json, value);
    ++mode_.stats_.out;
    f.record = std::move(out);
    co_return f;
  }

  HttpRequest request_;
  Record record_;

 private:
  RequestTemplates& mode_;
  MemoryBody body_;
};

RequestTemplates::RequestTemplates(RunContext& run, PartStats& stats, std::shared_ptr<const FetchConfig> cfg,
                                   LedgerFollower* follower)
    : run_(run),
      stats_(stats),
      cfg_(std::move(cfg)),
      eval_(std::make_unique<expr::Evaluator>(cfg_->program)),
      follower_(follower) {}

RequestTemplates::~RequestTemplates() = default;

void RequestTemplates::received(const Batch& batch) { stats_.in += batch.size(); }

void RequestTemplates::fail(Record r, std::string error, int attempts, bool json) {
  ++stats_.failed;
  run_.dead_letters.push({std::move(r), stats_.name, std::move(error), attempts, json});
}

FetchMode::Made RequestTemplates::make(Record& r) {
  Made made;
  std::string error;
  if (!eval_->bind(r.data, error)) {
    fail(std::move(r), error, 0, false);
    return made;
  }
  auto job = std::make_unique<Job>(*this, Record{});
  HttpRequest& req = job->request_;
  req.url = render_template(cfg_->url, *eval_, Encode::url);
  req.method = cfg_->method;
  for (const auto& [name, t] : cfg_->headers) req.headers.push_back(name + ": " + render_template(t, *eval_, Encode::none));
  if (cfg_->body) req.body = render_template(*cfg_->body, *eval_, Encode::none);
  std::string why;
  auto parts = check_url(req.url, why);
  bool bad_header = false;
  for (const auto& h : req.headers) bad_header = bad_header || has_line_break_or_nul(h);
  if (!parts || bad_header) {
    fail(std::move(r), parts ? "a header holds a line break or NUL" : "bad URL: " + why, 0);
    return made;
  }
  job->host = parts->host_key();
  if (follower_) job->key = request_key(req);
  job->pos = r.pos;
  job->record_ = std::move(r);
  made.job = std::move(job);
  return made;
}

void RequestTemplates::skipped(FetchJob& job) {
  ++stats_.dropped;
  run_.tracker.ack(job.pos);
}

asio::awaitable<void> RequestTemplates::wait_room() { co_await run_.dead_letters.wait_room(); }

void RequestTemplates::attempt_started() { ++stats_.in_flight; }

void RequestTemplates::attempt_ended(const HttpResponse&) { --stats_.in_flight; }

void RequestTemplates::host_limit(const std::string& host, size_t limit) { stats_.host_limits[host] = limit; }

}  // namespace aetl
