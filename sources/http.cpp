// The `http` source: the records of a paginated JSON API, page after page.
//   source:
//     http:
//       url: "https://api.example.com/v1/orders?per_page=100"
//       headers: {Authorization: "Bearer ${API_TOKEN}"}
//       records: data.results[*]        # where a page's records are
//       paginate: {cursor: meta.next_cursor, param: cursor}
//       incremental: {field: updated_at, param: updated_after}
// Pages are asked for one at a time (a page names the next), with the fetch
// stage's attempt policy: rate, retries, Retry-After. The pages end when the
// next URL field or the Link rel="next" header is missing, when no cursor comes
// back, or (page and offset numbers) at a page without records.
//
// Records are numbered across the pages. The checkpoint names the page holding
// the first record not yet handled (its URL, cursor or number, and the records
// before it) in the input's name, so an interrupted run asks for that page again
// and skips the records of it already handled. A run that read every page leaves
// the last one in the checkpoint: the next run reads it again for records added
// since (the way `lines` follows a file that grows); with `incremental:` it
// starts a new window instead, from the first page, with the largest value of
// the field read so far sent as a parameter.
#include <algorithm>
#include <cctype>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>

#include <spdlog/spdlog.h>

#include "config/kinds.h"
#include "engine/asio.h"
#include "engine/channel.h"
#include "engine/shutdown.h"
#include "expr/expression.h"
#include "net/http/attempt_policy.h"
#include "net/http/http_client.h"
#include "net/http/link_header.h"
#include "net/http/memory_body.h"
#include "net/http/url_check.h"
#include "net/http/url_query.h"
#include "run/checkpoint.h"
#include "run/pipeline.h"
#include "sources/http/page_position.h"
#include "sources/http/page_records.h"
#include "sources/http/secret_values.h"
#include "stages/fetch/fetch_request.h"

namespace aetl {
namespace {

enum class Paging { none, next_url, link, cursor, page, offset };

struct HttpSourceConfig {
  std::string url;
  std::string url_written;  // as in the file, ${VAR} unexpanded: the input's name
  bool url_secret = false;  // holds an expanded ${VAR}
  std::string origin;       // scheme://host:port of url: the only one the headers go to
  SecretValues secrets;     // the ${VAR} values in url and headers: never shown nor stored
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string> body;
  JsonPath records;
  Paging paging = Paging::none;
  JsonPath next;      // next_url, cursor: the field
  std::string param;  // cursor, page, offset: the query parameter
  int64_t start = 0;  // page, offset: the first page's number
  uint64_t max_pages = 0;
  JsonPath incremental;
  std::string since_param;
  AttemptLimits limits;
};

/// The input's name before names came from the URL as written (read on resume only).
std::string legacy_shown_url(const std::string& url, bool secret) {
  if (!secret) return mask_passwords(url);
  return mask_passwords(url.substr(0, url.find('?'))) + (url.find('?') == std::string::npos ? "" : "?...");
}

std::string origin_of(const UrlParts& parts) {
  std::string host = parts.host;
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  return parts.scheme + "://" + host + ":" + parts.port;
}

class HttpSource final : public Source {
 public:
  HttpSource(RunContext& run, PartStats& stats, std::shared_ptr<const HttpSourceConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)) {
    std::string base = "http: " + mask_passwords(cfg_->url_written) + " ";
    std::string legacy = "http: " + legacy_shown_url(cfg_->url, cfg_->url_secret) + " ";
    const InputMark* last = nullptr;
    size_t prefix = base.size();
    if (run_.resume)
      for (const auto& m : run_.resume->inputs) {
        if (m.name.rfind(base, 0) == 0) last = &m, prefix = base.size();
        else if (!last && m.name.rfind(legacy, 0) == 0) last = &m, prefix = legacy.size();
        else run_.tracker.carry(m);
      }
    if (last) {
      auto p = PagePosition::from_json(std::string_view(last->name).substr(prefix));
      std::optional<std::string> url = p ? SecretValues::reveal(p->url) : std::nullopt;
      std::optional<std::string> loop = p && p->loop && cfg_->paging != Paging::cursor
                                            ? SecretValues::reveal(*p->loop) : (p ? p->loop : std::nullopt);
      if (p && url) start_ = *p, start_.url = *url, start_.loop = loop;
      else spdlog::warn("source http: the checkpoint's page is unreadable; reading from the first page");
      if (start_.done) start_ = next_window(start_, last->line);
      mark_ = *last;
      mark_.name = base;
    }
    log_ = std::make_shared<PageLog>(base);
    note(start_.before + 1, start_);
    run_.tracker.add_input(0, base, last ? &mark_ : nullptr);
    run_.tracker.name_by(0, [log = log_](const InputMark& m) { return log->name_for(m.line); });
    run_.stage.input_names = {base};
  }

  asio::awaitable<void> run(BatchChannel& out) override {
    AttemptPolicy policy(run_.stage.io.get_executor(), run_.stage.control, run_.http(), cfg_->limits);
    PagePosition at = start_;
    for (uint64_t pages = 0;; ++pages) {
      note(at.before + 1, at);  // before any stop: a resumed run asks for this page, not the last one read
      log_->forget_before(handled_line());
      if (run_.stage.control.stopping()) break;
      if (cfg_->max_pages && pages >= cfg_->max_pages) {
        spdlog::info("source http: stopped after max_pages ({}); the next run goes on from page {}", pages, at.index);
        break;
      }
      if (run_.limit && emitted_ >= run_.limit) break;
      std::optional<PagePosition> next = co_await fetch_page(policy, at, out);
      if (!next) break;
      at = *next;
    }
    co_await send_batch(out, Batch{});
  }

 private:
  /// The first page of the window after `done`, whose records come after line `handled`.
  PagePosition next_window(const PagePosition& done, uint64_t handled) const {
    if (cfg_->incremental.keys.empty()) {  // the last page again, for records added since
      PagePosition again = done;
      again.done = false;
      return again;
    }
    PagePosition p;
    p.before = handled;
    p.since = done.high ? done.high : done.since;
    p.high = p.since;
    return p;
  }

  /// Logs page `at` for the checkpoint, its URL with the secret values as ${VAR}.
  void note(uint64_t first, PagePosition at) {
    at.url = cfg_->secrets.to_template(at.url);
    if (at.loop && (cfg_->paging == Paging::next_url || cfg_->paging == Paging::link))
      at.loop = cfg_->secrets.to_template(*at.loop);
    log_->add(first, at);
  }

  /// A URL or cause as messages show it: passwords masked, secret values as ${VAR}.
  std::string shown(const std::string& text) const { return mask_passwords(cfg_->secrets.hide(text)); }

  uint64_t handled_line() const {
    Checkpoint cp = run_.tracker.snapshot();
    return cp.inputs.empty() ? 0 : cp.inputs[0].line;
  }

  std::string page_url(const PagePosition& at) const {
    if (!at.url.empty()) return at.url;
    std::string url = cfg_->url;
    if (at.since && !cfg_->since_param.empty()) url = with_query_param(url, cfg_->since_param, *at.since);
    if (cfg_->paging == Paging::cursor && at.cursor) url = with_query_param(url, cfg_->param, *at.cursor);
    if (cfg_->paging == Paging::page)
      url = with_query_param(url, cfg_->param, std::to_string(cfg_->start + static_cast<int64_t>(at.index) - 1));
    if (cfg_->paging == Paging::offset)
      url = with_query_param(url, cfg_->param, std::to_string(cfg_->start + static_cast<int64_t>(at.offset)));
    return url;
  }

  /// A page that could not be read: the run stops reading (what came before is
  /// committed), counts it as one failure (exit 1) and says why.
  void fail(const PagePosition& at, const std::string& url, const std::string& cause) {
    spdlog::error("source http: page {} ({}): {}", at.index, shown(url), shown(cause));
    run_.tracker.fail(Position{0, at.before + 1, at.before + 1});  // a line never sent: nothing is acked for it
    ++stats_.failed;
  }

  /// Reads page `at` into `out`; returns the next page's position, or nullopt
  /// when there is none (the window's end is logged) or the run stops here.
  asio::awaitable<std::optional<PagePosition>> fetch_page(AttemptPolicy& policy, const PagePosition& at,
                                                          BatchChannel& out) {
    HttpRequest request;
    request.url = page_url(at);
    request.method = cfg_->method;
    request.headers = cfg_->headers;
    request.body = cfg_->body;
    request.want_link = cfg_->paging == Paging::link;
    std::string error;
    auto parts = check_url(request.url, error);
    if (!parts) {
      fail(at, request.url, error);
      co_return std::nullopt;
    }
    MemoryBody body;
    Attempted done = co_await policy.perform(request, parts->host_key(), &body);
    if (done.dropped) co_return std::nullopt;
    if (!is_success(done.response)) {
      std::string cause = attempt_error(done);
      if (done.attempts > 1) cause += " after " + std::to_string(done.attempts) + " attempts";
      fail(at, request.url, cause);
      co_return std::nullopt;
    }
    PageContent content;
    const JsonPath* next_field =
        cfg_->paging == Paging::next_url || cfg_->paging == Paging::cursor ? &cfg_->next : nullptr;
    std::string cause = read_page(body.data, cfg_->records, next_field, content);
    if (!cause.empty()) {
      fail(at, request.url, cause);
      co_return std::nullopt;
    }
    bool numbered = cfg_->paging == Paging::page || cfg_->paging == Paging::offset;
    std::string digest = numbered && !content.records.empty() ? records_digest(content.records) : "";
    if (!digest.empty() && digest == at.previous) {
      fail(at, request.url,
           "the same records as page " + std::to_string(at.index - 1) + ": does the API ignore `" + cfg_->param +
               "`?");
      co_return std::nullopt;
    }
    if (!content.records.empty()) last_full_ = at;
    if (cfg_->paging == Paging::cursor) seen_.emplace(at.cursor.value_or(""), at.index);
    if (cfg_->paging == Paging::next_url || cfg_->paging == Paging::link) seen_.emplace(request.url, at.index);
    if (at.loop) seen_.emplace(*at.loop, at.loop_page);  // found by the run that failed this page
    PagePosition next = at;
    next.previous = digest;
    next.loop.reset();
    uint64_t n = content.records.size();
    co_await send_records(at, content, next.high, out);
    next.before = at.before + n;
    next.offset = at.offset + n;
    next.index = at.index + 1;
    next.done = !follow(request.url, done.response, content, next, cause);
    if (!cause.empty()) {
      if (next.loop) {  // the next run reads this page again: its records are skipped, the loop found again
        PagePosition again = at;
        again.loop = next.loop;
        again.loop_page = next.loop_page;
        note(at.before + 1, again);
      }
      PagePosition past = at;
      past.before = next.before;
      fail(past, request.url, cause);
      co_return std::nullopt;
    }
    if (next.done) {  // the last page stays named (a later run reads it again), past its records
      // Page and offset numbers end at an empty page: the one before is named, so
      // that records filling it later are read (those handled are skipped).
      PagePosition last = numbered && n == 0 && last_full_ ? *last_full_ : at;
      last.done = true;
      last.high = next.high;
      note(at.before + n + 1, last);
      co_return std::nullopt;
    }
    co_return next;
  }

  /// Sets what asks for the page after the one at `url` in `next`; false when there is none
  /// (`cause` set when the API points back at a page this run read, or away
  /// from url's origin while headers are configured).
  bool follow(const std::string& url, const HttpResponse& response, const PageContent& content, PagePosition& next,
              std::string& cause) const {
    switch (cfg_->paging) {
      case Paging::none:
        return false;
      case Paging::next_url:
      case Paging::link: {
        std::optional<std::string> ref =
            cfg_->paging == Paging::link ? link_target(response.link, "next") : content.next;
        if (!ref || ref->empty()) return false;
        std::string error;
        auto resolved = resolve_url(response.final_url.empty() ? url : response.final_url, *ref, error);
        if (!resolved) {
          cause = "the next page's URL: " + error;
          return false;
        }
        if (auto seen = seen_.find(*resolved); seen != seen_.end()) {
          cause = "the next page's URL is page " + std::to_string(seen->second) +
                  "'s: the API's pages go round in a loop";
          next.loop = *resolved;
          next.loop_page = seen->second;
          return false;
        }
        auto parts = check_url(*resolved, error);
        if (!parts) {
          cause = "the next page's URL: " + error;
          return false;
        }
        if (!cfg_->headers.empty() && origin_of(*parts) != cfg_->origin) {
          cause = "the next page is on " + origin_of(*parts) + ", not on url's origin (" + cfg_->origin +
                  "): the headers are sent to url's origin only";
          return false;
        }
        next.url = *resolved;
        return true;
      }
      case Paging::cursor:
        if (!content.next) return false;
        if (auto seen = seen_.find(*content.next); seen != seen_.end()) {
          cause = "the next cursor is page " + std::to_string(seen->second) +
                  "'s: the API's pages go round in a loop";
          next.loop = *content.next;
          next.loop_page = seen->second;
          return false;
        }
        next.cursor = content.next;
        return true;
      case Paging::page:
      case Paging::offset:
        return !content.records.empty();
    }
    return false;
  }

  asio::awaitable<void> send_records(const PagePosition& at, const PageContent& content,
                                     std::optional<std::string>& high, BatchChannel& out) {
    Batch batch;
    batch.reserve(content.records.size());
    uint64_t line = at.before;
    for (const auto& text : content.records) {
      ++line;
      if (!cfg_->incremental.keys.empty())
        if (auto raw = find_json_path(text, cfg_->incremental))
          if (auto v = json_scalar_text(*raw); v && (!high || comes_after(*v, *high))) high = std::move(*v);
      if (mark_.is_done(line)) continue;
      if (run_.limit && emitted_ + batch.size() >= run_.limit) continue;
      Record r;
      r.pos = Position{0, line, line};
      r.data.reserve(text.size() + expr::kRecordPadding);
      r.data = text;
      batch.push_back(std::move(r));
    }
    stats_.in += content.records.size();
    stats_.out += batch.size();
    emitted_ += batch.size();
    if (!batch.empty()) co_await send_batch(out, std::move(batch));
  }

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const HttpSourceConfig> cfg_;
  PagePosition start_;
  InputMark mark_;  // what the last run handled
  std::shared_ptr<PageLog> log_;
  uint64_t emitted_ = 0;
  std::unordered_map<std::string, uint64_t> seen_;  // the URLs or cursors of the pages this run read → page
  std::optional<PagePosition> last_full_;           // the last page this run read with records
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"url", FieldType::string, "required", "the first page's URL (http or https)",
     "\"https://api.example.com/v1/orders?per_page=100\""},
    {"method", FieldType::string, "GET", "the HTTP method of every page", "POST"},
    {"headers", FieldType::map, "",
     "request headers (${VAR} from the environment; never printed), sent to url's origin only",
     "{Authorization: 'Bearer ${TOKEN}'}"},
    {"body", FieldType::string, "", "the request body of every page (with POST)", "'{\"status\": \"open\"}'"},
    {"records", FieldType::string, "\"\" (the whole body)",
     "where a page's records are: keys separated by dots; an array gives one record per element, an object one",
     "data.results[*]"},
    {"paginate.next_url", FieldType::string, "", "the field holding the next page's URL (absolute or relative)",
     "links.next"},
    {"paginate.link", FieldType::boolean, "false", "follow the Link header's rel=\"next\" URL", "true"},
    {"paginate.cursor", FieldType::string, "", "the field holding the next page's cursor, sent back as `param`",
     "meta.next_cursor"},
    {"paginate.page", FieldType::boolean, "false", "number the pages with `param`, from `start` (default 1)",
     "true"},
    {"paginate.offset", FieldType::boolean, "false",
     "send the records read so far as `param`, plus `start` (default 0)", "true"},
    {"paginate.param", FieldType::string, "cursor, page or offset", "the query parameter of cursor, page or offset",
     "after"},
    {"paginate.start", FieldType::integer, "1 (page), 0 (offset)", "the first page's number or offset", "0"},
    {"paginate.max_pages", FieldType::integer, "0", "pages one run reads at most (0: all); the next run goes on",
     "1000"},
    {"incremental.field", FieldType::string, "required",
     "a field of the records whose largest value read is kept for the next run", "updated_at"},
    {"incremental.param", FieldType::string, "required",
     "the query parameter the next run sends that value in, meaning strictly after it", "updated_after"},
    {"rate", FieldType::rate, "", "pages asked for per second at most (none: no limit)", "5/s"},
    {"retry.max", FieldType::integer, "2",
     "retries of a page after the first attempt (connection errors, timeouts, 429, 5xx); `retry: N` is short for "
     "it", "5"},
    {"retry.backoff", FieldType::duration_range, "250ms..30s",
     "waits between attempts, full jitter, capped; a longer Retry-After is waited for up to the cap", "1s..60s"},
};
const std::string_view kExamples[] = {
    "{url: 'http://127.0.0.1:8080/items', records: items, paginate: {next_url: next}, rate: 10/s, retry: {max: 5, "
    "backoff: 200ms..30s}}",
    "{url: 'http://127.0.0.1:8080/items', records: 'data.results[*]', paginate: {cursor: meta.next, param: after, "
    "max_pages: 100}, incremental: {field: updated_at, param: since}}",
    "{url: 'http://127.0.0.1:8080/items', method: POST, body: '{}', headers: {Authorization: 'Bearer x'}, "
    "paginate: {page: true, param: p, start: 0}}",
    "{url: 'http://127.0.0.1:8080/items', paginate: {link: true}}",
    "{url: 'http://127.0.0.1:8080/items', records: items, paginate: {offset: true}, retry: 3}",
};
}  // namespace
extern const KindFields http_source_fields{kFields, kExamples};

namespace {

std::optional<JsonPath> read_path(const ConfigString& s, const std::string& key, ConfigProblems& problems) {
  std::string error;
  auto path = parse_json_path(s.text, error);
  if (!path) problems.add(s.where, key + ": " + error);
  return path;
}

void read_paginate(ConfigReader& p, HttpSourceConfig& cfg, ConfigProblems& problems) {
  std::vector<std::string> styles;
  if (auto n = p.string("next_url")) {
    if (auto path = read_path(*n, "paginate.next_url", problems)) cfg.next = *path;
    cfg.paging = Paging::next_url;
    styles.push_back("next_url");
  }
  if (auto l = p.boolean("link"); l && *l) cfg.paging = Paging::link, styles.push_back("link");
  if (auto c = p.string("cursor")) {
    if (auto path = read_path(*c, "paginate.cursor", problems)) cfg.next = *path;
    cfg.paging = Paging::cursor;
    cfg.param = "cursor";
    styles.push_back("cursor");
  }
  if (auto pg = p.boolean("page"); pg && *pg) cfg.paging = Paging::page, cfg.param = "page", cfg.start = 1,
                                                styles.push_back("page");
  if (auto o = p.boolean("offset"); o && *o) cfg.paging = Paging::offset, cfg.param = "offset", cfg.start = 0,
                                               styles.push_back("offset");
  if (styles.size() > 1)
    problems.add(p.where(), "paginate: give one of next_url, link, cursor, page, offset (not " + styles[0] + " and " +
                                styles[1] + ")");
  if (styles.empty()) problems.add(p.where(), "paginate: give one of next_url, link, cursor, page, offset");
  bool numbered = cfg.paging == Paging::cursor || cfg.paging == Paging::page || cfg.paging == Paging::offset;
  if (auto param = p.string("param")) {
    if (!numbered && !styles.empty()) problems.add(param->where, "paginate.param: only with cursor, page or offset");
    if (param->text.empty()) problems.add(param->where, "paginate.param: an empty name");
    cfg.param = param->text;
  }
  if (auto s = p.integer("start", 0, int64_t{1} << 53)) {
    if (cfg.paging != Paging::page && cfg.paging != Paging::offset && !styles.empty())
      problems.add(p.where(), "paginate.start: only with page or offset");
    cfg.start = *s;
  }
  if (auto m = p.integer("max_pages", 0, int64_t{1} << 53)) cfg.max_pages = static_cast<uint64_t>(*m);
}

}  // namespace

SourceBuilder parse_http_source(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) return {};
  auto cfg = std::make_shared<HttpSourceConfig>();
  size_t before = problems.size();
  if (auto u = r.string("url", true)) {
    std::string error;
    if (!check_url(u->text, error)) problems.add(u->where, "url: " + error);
    cfg->url = u->text;
    cfg->url_secret = u->secret;
    cfg->secrets.add(u->values);
    const ConfigValue* written = r.raw("url");
    cfg->url_written = written && written->is_scalar() ? written->scalar : u->text;
    if (auto parts = check_url(u->text, error)) cfg->origin = origin_of(*parts);
  }
  if (auto m = r.string("method")) {
    std::string err = check_method(m->text);
    if (!err.empty()) problems.add(m->where, "method: " + err);
    cfg->method = m->text;
  }
  if (auto headers = r.string_map("headers"))
    for (auto& [name, value] : *headers) {
      std::string header = name + ": " + value.text;
      std::string err = check_header(header);
      if (!err.empty()) problems.add(value.where, "headers." + name + ": " + err);
      cfg->secrets.add(value.values);
      cfg->headers.push_back(std::move(header));
    }
  if (auto b = r.string("body")) cfg->body = b->text;
  if (auto rec = r.string("records"))
    if (auto path = read_path(*rec, "records", problems)) cfg->records = *path;
  if (auto p = r.section("paginate")) {
    read_paginate(*p, *cfg, problems);
    p->finish();
  }
  if (auto i = r.section("incremental")) {
    if (auto f = i->string("field", true))
      if (auto path = read_path(*f, "incremental.field", problems)) {
        if (path->keys.empty()) problems.add(f->where, "incremental.field: a field is needed");
        cfg->incremental = *path;
      }
    if (auto p = i->string("param", true)) {
      if (p->text.empty()) problems.add(p->where, "incremental.param: an empty name");
      cfg->since_param = p->text;
    }
    i->finish();
  }
  cfg->limits.concurrency = 1;  // one page at a time: a page names the next
  cfg->limits.stop_ends_waits = true;  // a page not read by a stop is asked for again by the next run
  cfg->limits.retry = RetryPolicy{2, std::chrono::milliseconds(250), std::chrono::milliseconds(30000)};
  if (auto rate = r.rate("rate")) cfg->limits.rate = *rate;
  if (auto retry = r.retry("retry", cfg->limits.retry)) cfg->limits.retry = *retry;
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run) -> std::unique_ptr<Source> {
    return std::make_unique<HttpSource>(run, run.add_part("http"), cfg);
  };
}

}  // namespace aetl
