// The `fetch` stage: one HTTP request per record on the shared libcurl handle;
// the response lands in a field. The API-aggregation case: many records, many
// concurrent calls, bounded.
//   - fetch:
//       url: 'http://geo.internal/ip/{ip}?lang={user.lang}'   # {expr}: URL-encoded
//       headers: {Authorization: 'Bearer ${TOKEN}'}
//       concurrency: 32
//       per_host: 8
//       rate: 50/s
//       retry: {max: 5, backoff: 200ms..30s}
//       into: geo
// `into` receives {"status", "ok", "body" (parsed JSON, else text), "error",
// "attempts", "time_ms"}. A transport error or a status outside 2xx (after the
// retries) sends the record to the dead letter, unless `keep_failures: true`.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"
#include <random>

#include <simdjson.h>

#include "net/http/http_client.h"
#include "net/http/memory_body.h"
#include "net/http/url_check.h"
#include "engine/json_scan.h"
#include "engine/json_writer.h"
#include "engine/keyed_limiter.h"
#include "config/kinds.h"
#include "engine/rate_limiter.h"
#include "run/result_emitter.h"
#include "run/dead_letters.h"
#include "engine/semaphore.h"
#include "engine/shutdown.h"
#include "stages/expr_config.h"
#include "stages/fetch/fetch_request.h"
#include "stages/fetch/fetch_stage.h"
#include "engine/task_group.h"

namespace aetl {
namespace {

using namespace asio::experimental::awaitable_operators;

/// A string with {expression} holes: literal pieces and expression indices.
struct Template {
  struct Piece {
    std::string text;
    int expr = -1;
  };
  std::vector<Piece> pieces;
};

enum class Encode { url, none };

struct FetchConfig {
  expr::Program program;
  Template url;
  std::string method = "GET";
  std::vector<std::pair<std::string, Template>> headers;
  std::optional<Template> body;
  size_t concurrency = 16;
  size_t per_host = 0;
  double rate = 0;
  RetryPolicy retry{2, std::chrono::milliseconds(250), std::chrono::milliseconds(30000)};
  bool ordered = false;
  std::string into_json = "\"response\":";
  std::string into = "response";
  bool keep_failures = false;
};

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

std::string render(const Template& t, expr::Evaluator& eval, Encode encode) {
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


class PipelineFetchStage final : public Stage {
 public:
  PipelineFetchStage(RunContext& run, PartStats& stats, std::shared_ptr<const FetchConfig> cfg)
      : run_(run),
        stats_(stats),
        cfg_(std::move(cfg)),
        eval_(cfg_->program),
        slots_(run.stage.io.get_executor(), cfg_->concurrency * 2),
        in_flight_(run.stage.io.get_executor(), cfg_->concurrency),
        hosts_(run.stage.io.get_executor(), cfg_->per_host ? cfg_->per_host : cfg_->concurrency),
        tasks_(run.stage.io.get_executor()),
        emitter_task_(run.stage.io.get_executor()),
        rng_(std::random_device{}()) {
    if (cfg_->rate > 0) rate_.emplace(run.stage.io.get_executor(), cfg_->rate, 1);
  }

  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override {
    client_ = &run_.http();
    emitter_.emplace(run_.stage.io.get_executor(), out, slots_, cfg_->ordered,
                     std::max<size_t>(1, cfg_->concurrency), std::chrono::milliseconds(50));
    emitter_task_.spawn(emitter_->run());
    std::exception_ptr error;
    try {
      co_await dispatch(in);
    } catch (...) {
      error = std::current_exception();
      run_.stage.control.request_abort();
    }
    co_await tasks_.wait_all();
    emitter_->finish();
    co_await emitter_task_.wait_all();
    if (!error) error = tasks_.first_error();
    if (!error) error = emitter_->error();
    if (error) std::rethrow_exception(error);
  }

 private:
  struct Item {
    Record record;
    HttpRequest request;
    std::string host;
  };

  void fail(Record r, std::string error, int attempts, bool json = true) {
    ++stats_.failed;
    run_.dead_letters.push({std::move(r), stats_.name, std::move(error), attempts, json});
  }

  asio::awaitable<void> dispatch(BatchChannel& in) {
    auto& control = run_.stage.control;
    std::string error;
    for (;;) {
      Batch batch = co_await receive_batch(in);
      if (batch.empty()) break;
      if (control.stopping()) continue;  // drain without starting anything new
      stats_.in += batch.size();
      for (auto& r : batch) {
        if (control.stopping()) break;
        if (!eval_.bind(r.data, error)) {
          fail(std::move(r), error, 0, false);
          continue;
        }
        auto item = std::make_shared<Item>();
        item->request.url = render(cfg_->url, eval_, Encode::url);
        item->request.method = cfg_->method;
        for (const auto& [name, t] : cfg_->headers) item->request.headers.push_back(name + ": " + render(t, eval_, Encode::none));
        if (cfg_->body) item->request.body = render(*cfg_->body, eval_, Encode::none);
        std::string why;
        auto parts = check_url(item->request.url, why);
        bool bad_header = false;
        for (const auto& h : item->request.headers) bad_header = bad_header || has_line_break_or_nul(h);
        if (!parts || bad_header) {
          fail(std::move(r), parts ? "a header holds a line break or NUL" : "bad URL: " + why, 0);
          continue;
        }
        item->host = parts->host_key();
        item->record = std::move(r);
        co_await slots_.acquire();
        uint64_t seq = next_seq_++;
        tasks_.spawn(fetch_guarded(std::move(item), seq));
        co_await run_.dead_letters.wait_room();
      }
    }
  }

  asio::awaitable<void> fetch_guarded(std::shared_ptr<Item> item, uint64_t seq) {
    std::exception_ptr error;
    try {
      co_await fetch_one(item, seq);
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      run_.stage.control.request_abort();
      emitter_->push(seq, std::nullopt);
      std::rethrow_exception(error);
    }
  }

  asio::awaitable<void> fetch_one(std::shared_ptr<Item> item, uint64_t seq) {
    auto& control = run_.stage.control;
    MemoryBody body;
    HttpResponse resp;
    int attempts = 0;
    bool dropped = false;
    std::string give_up;
    for (;;) {
      if (rate_) co_await (rate_->acquire() || control.wait_abort());
      if (control.aborted()) {
        dropped = true;
        break;
      }
      co_await hosts_.acquire(item->host);
      co_await in_flight_.acquire();
      if (control.aborted()) {
        in_flight_.release();
        hosts_.release(item->host);
        dropped = true;
        break;
      }
      ++stats_.in_flight;
      resp = co_await client_->perform(item->request, &body);
      --stats_.in_flight;
      in_flight_.release();
      hosts_.release(item->host);
      if (resp.aborted) {
        dropped = true;
        break;
      }
      ++attempts;
      if (!is_retryable(resp) || attempts > cfg_->retry.max_retries) break;
      std::optional<std::chrono::milliseconds> delay =
          resp.retry_after_s >= 0 ? retry_after_delay(cfg_->retry, attempts, resp.retry_after_s, rng_)
                                  : backoff_delay(cfg_->retry, attempts, rng_);
      if (!delay) {
        give_up = "the server asked to retry after " + std::to_string(resp.retry_after_s) +
                  " s, longer than the backoff maximum";
        break;
      }
      asio::steady_timer sleep(run_.stage.io, *delay);
      co_await (sleep.async_wait(asio::use_awaitable) || control.wait_abort());
      if (control.aborted()) {
        dropped = true;
        break;
      }
    }
    if (dropped) {  // not written, not acknowledged: the next run does it again
      emitter_->push(seq, std::nullopt);
      co_return;
    }
    bool ok = resp.curl_code == 0 && resp.status >= 200 && resp.status <= 299 && give_up.empty();
    std::string error = !give_up.empty() ? give_up
                        : resp.curl_code != 0 ? resp.error
                        : ok ? std::string() : "HTTP " + std::to_string(resp.status);
    if (!ok && !cfg_->keep_failures) {
      fail(std::move(item->record), error, attempts);
      emitter_->push(seq, std::nullopt);
      co_return;
    }
    std::string value;
    JsonWriter w(value);
    w.begin_object();
    w.key("status").number(static_cast<int64_t>(resp.status));
    w.key("ok").boolean(ok);
    w.key("body");
    bool is_json = false;
    if (!body.data.empty()) {
      simdjson::dom::parser parser;
      simdjson::dom::element root;
      is_json = !parser.parse(body.data).get(root);
      if (is_json) w.raw(simdjson::minify(root));
    }
    if (!is_json) {
      if (body.data.empty()) w.null();
      else w.string(body.data);
    }
    if (error.empty()) w.key("error").null();
    else w.key("error").string(error);
    w.key("attempts").number(static_cast<int64_t>(attempts));
    w.key("time_ms").number(resp.total_ms, 1);
    w.end_object();
    Record out;
    out.pos = item->record.pos;
    out.data = with_field(item->record.data, value);
    ++stats_.out;
    emitter_->push(seq, std::move(out));
  }

  /// The record with `into` set to `value` (replaced where it stands, else appended).
  std::string with_field(const std::string& record, const std::string& value) {
    std::string out;
    out.reserve(record.size() + value.size() + cfg_->into_json.size() + 2);
    out += '{';
    bool first = true;
    bool placed = false;
    for_each_member(record, 0, [&](const JsonMember& m) {
      if (!first) out += ',';
      first = false;
      if (json_unescape(m.raw_key) == cfg_->into) {
        out += cfg_->into_json;
        out += value;
        placed = true;
      } else {
        out.append(record, m.begin, m.value_end - m.begin);
      }
    });
    if (!placed) {
      if (!first) out += ',';
      out += cfg_->into_json;
      out += value;
    }
    out += '}';
    return out;
  }

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const FetchConfig> cfg_;
  expr::Evaluator eval_;
  HttpClient* client_ = nullptr;
  AsyncSemaphore slots_;      // items between dispatch and the emitter (the reorder window)
  AsyncSemaphore in_flight_;  // transfers on the wire
  KeyedLimiter hosts_;
  std::optional<RateLimiter> rate_;
  TaskGroup tasks_;
  TaskGroup emitter_task_;
  std::optional<ResultEmitter> emitter_;
  std::mt19937_64 rng_;
  uint64_t next_seq_ = 0;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"url", FieldType::template_text, "required",
     "the URL; {expression} is replaced by its value, URL-encoded; http and https only",
     "'http://geo.internal/ip/{ip}'"},
    {"method", FieldType::string, "GET", "the HTTP method", "POST"},
    {"headers", FieldType::map, "", "request headers, each value a template", "{Authorization: 'Bearer ${TOKEN}'}"},
    {"body", FieldType::template_text, "", "the request body, a template (not URL-encoded; {{ and }} are literal braces)",
     "'{{\"id\": {id}}}'"},
    {"concurrency", FieldType::integer, "16", "requests in flight", "32"},
    {"per_host", FieldType::integer, "0", "requests in flight per host:port (0: no extra limit)", "4"},
    {"rate", FieldType::rate, "", "requests started per second at most (none: no limit)", "50/s"},
    {"retry.max", FieldType::integer, "2",
     "retries after the first attempt (connection errors, timeouts, 429, 5xx); `retry: N` is short for it", "5"},
    {"retry.backoff", FieldType::duration_range, "250ms..30s", "waits between attempts, full jitter, capped",
     "200ms..30s"},
    {"ordered", FieldType::boolean, "false", "emit records in input order (default: as they complete)", "true"},
    {"into", FieldType::string, "response",
     "the field receiving {status, ok, body, error, attempts, time_ms}", "geo"},
    {"keep_failures", FieldType::boolean, "false",
     "a failed request passes on with ok: false instead of going to the dead letter", "true"},
};
const std::string_view kExamples[] = {
    "{url: 'http://geo.internal/ip/{ip}', concurrency: 32, per_host: 4, rate: 50/s, retry: {max: 5, backoff: "
    "200ms..30s}, ordered: true, into: geo, keep_failures: true}",
    "{url: 'https://api.example.com/items', method: POST, headers: {Content-Type: application/json}, body: "
    "'{{\"id\": {id}}}', retry: 3}",
};
}  // namespace
extern const KindFields fetch_stage_fields{kFields, kExamples};

StageBuilder parse_fetch_stage(const ConfigValue& node, ConfigProblems& problems) {
  auto cfg = std::make_shared<FetchConfig>();
  size_t before = problems.size();
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) return {};
  if (auto url = r.string("url", true))
    if (auto t = parse_template(*url, cfg->program, problems, "url")) cfg->url = std::move(*t);
  if (auto m = r.string("method")) {
    std::string err = check_method(m->text);
    if (!err.empty()) problems.add(m->where, "method: " + err);
    cfg->method = m->text;
  }
  if (auto headers = r.string_map("headers")) {
    for (auto& [name, value] : *headers) {
      std::string err = check_header(name + ": x");
      if (!err.empty()) problems.add(value.where, "headers." + name + ": " + err);
      if (auto t = parse_template(value, cfg->program, problems, "headers." + name))
        cfg->headers.emplace_back(name, std::move(*t));
    }
  }
  if (auto b = r.string("body"))
    if (auto t = parse_template(*b, cfg->program, problems, "body")) cfg->body = std::move(*t);
  if (auto n = r.integer("concurrency", 1, 10000)) cfg->concurrency = static_cast<size_t>(*n);
  if (auto n = r.integer("per_host", 0, 10000)) cfg->per_host = static_cast<size_t>(*n);
  if (auto rate = r.rate("rate")) cfg->rate = *rate;
  if (auto retry = r.retry("retry", cfg->retry)) cfg->retry = *retry;
  if (auto o = r.boolean("ordered")) cfg->ordered = *o;
  if (auto into = r.string("into")) {
    if (into->text.empty()) problems.add(into->where, "into: an empty field name");
    cfg->into = into->text;
    cfg->into_json.clear();
    append_json_string(cfg->into_json, into->text);
    cfg->into_json += ':';
  }
  if (auto k = r.boolean("keep_failures")) cfg->keep_failures = *k;
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return std::make_unique<PipelineFetchStage>(run, stats, cfg);
  };
}

}  // namespace aetl
