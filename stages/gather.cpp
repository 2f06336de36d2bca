// The `gather` stage: several HTTP calls for each record, made at the same time
// (the asyncio.gather of an API aggregator), each response in a field of its own.
//   - gather:
//       concurrency: 32              # calls in flight, all records and calls together
//       per_host: 8
//       rate: 100/s
//       retry: {max: 2, backoff: 250ms..30s}
//       calls:
//         - {into: user, url: 'http://api/users/{user_id}'}
//         - {into: orders, url: 'http://api/orders?user={user_id}', required: false}
//         - {into: avatar, url: '{user.body.avatar_url}', after: [user]}
// Calls with nothing to wait for start together; a call `after` others starts
// once they are in, and its templates see their results. Each `into` field gets
// what a fetch stage's does: {status, ok, body, error, attempts, time_ms}. A
// required call that fails (after its retries) sends the record to the dead
// letter; an optional one leaves ok: false and the record goes on.
#include <algorithm>
#include <memory>

#include "config/kinds.h"
#include "engine/json_writer.h"
#include "engine/semaphore.h"
#include "engine/shutdown.h"
#include "engine/task_group.h"
#include "net/http/http_client.h"
#include "net/http/memory_body.h"
#include "net/http/url_check.h"
#include "run/dead_letters.h"
#include "run/result_emitter.h"
#include "run/run_context.h"
#include "net/http/attempt_policy.h"
#include "stages/fetch/fetch_request.h"
#include "stages/fetch/request_template.h"

namespace aetl {
namespace {

struct GatherCall {
  std::string into;
  std::string into_json;  ///< `"into":`
  Template url;
  std::string method = "GET";
  std::vector<std::pair<std::string, Template>> headers;
  std::optional<Template> body;
  bool required = true;
  std::vector<size_t> after;  ///< calls (earlier in the list) whose results it waits for
  size_t wave = 0;            ///< 0: starts at once; else one after the latest of `after`
};

struct GatherConfig {
  expr::Program program;  ///< every template's expressions
  std::vector<GatherCall> calls;
  size_t waves = 1;
  AttemptLimits limits;
  bool ordered = false;
};

/// One call of one record: its request, where its body goes, what it came to.
struct CallState {
  HttpRequest request;
  std::string host;
  MemoryBody body;
  Attempted attempted;
  bool made = false;
  bool failed = false;
  std::string error;  ///< why it failed (set when failed)
};

class Gather final : public Stage, public AttemptObserver {
 public:
  Gather(RunContext& run, PartStats& stats, std::shared_ptr<const GatherConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)) {}

  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override {
    auto ex = run_.stage.io.get_executor();
    RunControl& control = run_.stage.control;
    AttemptPolicy policy(ex, control, run_.http(), cfg_->limits);
    policy.set_observer(this);
    size_t window = cfg_->ordered ? cfg_->limits.concurrency : 2 * cfg_->limits.concurrency;
    AsyncSemaphore slots(ex, std::max<size_t>(1, window / std::max<size_t>(1, cfg_->calls.size())));
    ResultEmitter emitter(ex, out, slots, cfg_->ordered, std::max<size_t>(1, slots.permits() / 2),
                          std::chrono::milliseconds(20));
    TaskGroup tasks(ex), emitting(ex);
    emitting.spawn(emitter.run());
    std::exception_ptr error;
    uint64_t seq = 0;
    try {
      for (;;) {
        Batch batch = co_await receive_batch(in);
        if (batch.empty()) break;
        if (control.stopping()) continue;  // drain the source, start nothing new
        stats_.in += batch.size();
        for (auto& r : batch) {
          if (control.stopping()) break;
          co_await slots.acquire();
          if (control.stopping()) {
            slots.release();
            break;
          }
          tasks.spawn(guarded(std::move(r), seq++, policy, emitter));
          co_await run_.dead_letters.wait_room();
        }
      }
    } catch (...) {
      error = std::current_exception();
      control.request_abort();
    }
    co_await tasks.wait_all();
    emitter.finish();
    co_await emitting.wait_all();
    if (!error) error = tasks.first_error();
    if (!error) error = emitting.first_error();
    if (!error) error = emitter.error();
    if (error) std::rethrow_exception(error);
  }

  void attempt_started() override { ++stats_.in_flight; }
  void attempt_ended(const HttpResponse&) override { --stats_.in_flight; }
  void host_limit(const std::string& host, size_t limit) override { stats_.host_limits[host] = limit; }

 private:
  asio::awaitable<void> guarded(Record r, uint64_t seq, AttemptPolicy& policy, ResultEmitter& emitter) {
    std::exception_ptr error;
    try {
      emitter.push(seq, co_await gather(std::move(r), policy));
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {  // a bug or a resource failure: stop the run, and still hand in `seq`
      run_.stage.control.request_abort();
      emitter.push(seq, std::nullopt);
      std::rethrow_exception(error);
    }
  }

  /// The record with every call's result, or nullopt (dead-lettered, or cut off by the run).
  asio::awaitable<std::optional<Record>> gather(Record r, AttemptPolicy& policy) {
    const auto& calls = cfg_->calls;
    std::vector<CallState> state(calls.size());
    expr::Evaluator eval(cfg_->program);
    for (size_t wave = 0; wave < cfg_->waves; ++wave) {
      std::string error;
      bool bound = false;
      std::vector<size_t> now;
      for (size_t i = 0; i < calls.size(); ++i) {
        if (calls[i].wave != wave) continue;
        const GatherCall& c = calls[i];
        CallState& s = state[i];
        auto failed_before = std::find_if(c.after.begin(), c.after.end(), [&](size_t k) { return state[k].failed; });
        if (failed_before != c.after.end()) {
          s.failed = true;
          s.error = "not made: '" + calls[*failed_before].into + "' failed";
          continue;
        }
        if (!bound && !eval.bind(r.data, error)) co_return fail(std::move(r), error, 0, false);
        bound = true;
        s.request.url = render_template(c.url, eval, Encode::url);
        s.request.method = c.method;
        for (const auto& [name, t] : c.headers) s.request.headers.push_back(name + ": " + render_template(t, eval, Encode::none));
        if (c.body) s.request.body = render_template(*c.body, eval, Encode::none);
        std::string why;
        auto parts = check_url(s.request.url, why);
        bool bad_header = std::any_of(s.request.headers.begin(), s.request.headers.end(),
                                      [](const std::string& h) { return has_line_break_or_nul(h); });
        if (!parts || bad_header)
          co_return fail(std::move(r), c.into + ": " + (parts ? "a header holds a line break or NUL" : "bad URL: " + why), 0);
        s.host = parts->host_key();
        now.push_back(i);
      }
      // This wave's calls, all at once, under the stage's shared limits.
      TaskGroup wave_calls(run_.stage.io.get_executor());
      for (size_t i : now)
        wave_calls.spawn([](CallState& s, AttemptPolicy& p) -> asio::awaitable<void> {
          s.attempted = co_await p.perform(s.request, s.host, &s.body);
          s.made = true;
        }(state[i], policy));
      co_await wave_calls.wait_all();
      if (auto e = wave_calls.first_error()) std::rethrow_exception(e);
      for (size_t i : now)
        if (state[i].attempted.dropped) co_return std::nullopt;  // cut off by the run: the next run does it again
      int attempts = 0;
      for (size_t i = 0; i < calls.size(); ++i) {
        if (calls[i].wave != wave) continue;
        CallState& s = state[i];
        const GatherCall& c = calls[i];
        attempts = std::max(attempts, s.attempted.attempts);
        std::string value;
        if (s.made) {
          s.failed = !is_success(s.attempted.response);
          if (s.failed) s.error = attempt_error(s.attempted);
          value = response_value(s.attempted, s.body.data);
        } else {
          JsonWriter w(value);
          w.begin_object();
          w.key("status").number(int64_t{0});
          w.key("ok").boolean(false);
          w.key("body").null();
          w.key("error").string(s.error);
          w.key("attempts").number(int64_t{0});
          w.key("time_ms").number(0.0, 1);
          w.end_object();
        }
        ++stats_.events[c.into + (s.failed ? " failed" : " ok")];
        r.data = record_with_field(r.data, c.into, c.into_json, value);
      }
      for (size_t i = 0; i < calls.size(); ++i)
        if (calls[i].wave == wave && calls[i].required && state[i].failed)
          co_return fail(std::move(r), calls[i].into + ": " + state[i].error, attempts);
    }
    ++stats_.out;
    co_return std::optional<Record>(std::move(r));
  }

  std::optional<Record> fail(Record r, std::string error, int attempts, bool json = true) {
    ++stats_.failed;
    run_.dead_letters.push({std::move(r), stats_.name, std::move(error), attempts, json});
    return std::nullopt;
  }

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const GatherConfig> cfg_;
};

const FieldSpec kFields[] = {
    {"calls", FieldType::section, "required", "the calls of each record; each {into, url, method, headers, body, "
     "required, after}", "[{into: user, url: 'http://api/users/{id}'}, {into: orders, url: 'http://api/orders?u={id}'}]"},
    {"calls.into", FieldType::string, "required", "the field receiving {status, ok, body, error, attempts, time_ms}",
     "user"},
    {"calls.url", FieldType::template_text, "required",
     "the URL; {expression} is replaced by its value, URL-encoded; http and https only", "'http://api/users/{id}'"},
    {"calls.method", FieldType::string, "GET", "the HTTP method", "POST"},
    {"calls.headers", FieldType::map, "", "request headers, each value a template", "{Authorization: 'Bearer ${TOKEN}'}"},
    {"calls.body", FieldType::template_text, "", "the request body, a template ({{ and }} are literal braces)",
     "'{{\"id\": {id}}}'"},
    {"calls.required", FieldType::boolean, "true",
     "false: a failure leaves ok: false in its field and the record goes on (else: to the dead letter)", "false"},
    {"calls.after", FieldType::list, "",
     "calls (by into, listed before it) whose results it waits for and may use in its templates", "[user]"},
    {"concurrency", FieldType::integer, "32", "calls in flight, all records and calls together; auto: as fetch's",
     "64"},
    {"per_host", FieldType::integer, "0", "calls in flight per host:port (0: no extra limit)", "4"},
    {"rate", FieldType::rate, "", "calls started per second at most (none: no limit)", "50/s"},
    {"retry.max", FieldType::integer, "2",
     "retries of a call after its first attempt (connection errors, timeouts, 429, 5xx)", "5"},
    {"retry.backoff", FieldType::duration_range, "250ms..30s", "waits between attempts, full jitter, capped",
     "200ms..30s"},
    {"ordered", FieldType::boolean, "false", "emit records in input order (default: as they complete)", "true"},
};
const std::string_view kExamples[] = {
    "{calls: [{into: user, url: 'http://api/users/{id}', headers: {Accept: application/json}}, {into: orders, url: "
    "'http://api/orders', method: POST, body: '{{\"user\": {id}}}', required: false}, {into: avatar, url: "
    "'{user.body.avatar}', after: [user]}], concurrency: 64, per_host: 8, rate: 100/s, retry: {max: 3, backoff: "
    "100ms..5s}, ordered: true}",
};

}  // namespace
extern const KindFields gather_stage_fields{kFields, kExamples};

StageBuilder parse_gather_stage(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) {
    problems.add(node.where, "takes a mapping with calls, as in `gather: {calls: [{into: user, url: '...'}]}`");
    return {};
  }
  size_t before = problems.size();
  auto cfg = std::make_shared<GatherConfig>();
  const ConfigValue* calls = r.raw("calls", true);
  if (calls && (!calls->is_sequence() || calls->items.empty() || calls->items.size() > 64)) {
    problems.add(calls->where, "calls: must be a list of 1 to 64 calls {into, url, ...}, not " + calls->describe());
  } else if (calls) {
    for (const auto& item : calls->items) {
      ConfigReader c(item, problems, {kFields}, "calls");
      if (!c.ok()) {
        problems.add(item.where, "calls: each call is a mapping {into, url, ...}, not " + item.describe());
        continue;
      }
      GatherCall call;
      if (auto into = c.string("into", true)) {
        call.into = into->text;
        if (call.into.empty()) problems.add(into->where, "calls.into: an empty field name");
        for (const auto& other : cfg->calls)
          if (other.into == call.into) problems.add(into->where, "calls.into: '" + call.into + "' is used by two calls");
        append_json_string(call.into_json, call.into);
        call.into_json += ':';
      }
      if (auto url = c.string("url", true))
        if (auto t = parse_template(*url, cfg->program, problems, "calls.url")) call.url = std::move(*t);
      if (auto m = c.string("method")) {
        std::string err = check_method(m->text);
        if (!err.empty()) problems.add(m->where, "calls.method: " + err);
        call.method = m->text;
      }
      if (auto headers = c.string_map("headers"))
        for (auto& [name, value] : *headers) {
          std::string err = check_header(name + ": x");
          if (!err.empty()) problems.add(value.where, "calls.headers." + name + ": " + err);
          if (auto t = parse_template(value, cfg->program, problems, "calls.headers." + name))
            call.headers.emplace_back(name, std::move(*t));
        }
      if (auto b = c.string("body"))
        if (auto t = parse_template(*b, cfg->program, problems, "calls.body")) call.body = std::move(*t);
      if (auto req = c.boolean("required")) call.required = *req;
      if (auto after = c.string_list("after"))
        for (const auto& name : *after) {
          auto it = std::find_if(cfg->calls.begin(), cfg->calls.end(), [&](const GatherCall& g) { return g.into == name.text; });
          if (it == cfg->calls.end()) {
            problems.add(name.where, "calls.after: no call before this one has into: '" + name.text + "'");
            continue;
          }
          size_t k = static_cast<size_t>(it - cfg->calls.begin());
          call.after.push_back(k);
          call.wave = std::max(call.wave, it->wave + 1);
        }
      c.finish();
      cfg->waves = std::max(cfg->waves, call.wave + 1);
      cfg->calls.push_back(std::move(call));
    }
  }
  cfg->limits.retry.max_retries = 2;
  cfg->limits.retry.min_backoff = std::chrono::milliseconds(250);
  cfg->limits.retry.max_backoff = std::chrono::milliseconds(30000);
  read_concurrency(r, cfg->limits);
  if (auto n = r.integer("per_host", 0, 10000)) cfg->limits.per_host = static_cast<size_t>(*n);
  if (auto rate = r.rate("rate")) cfg->limits.rate = *rate;
  if (auto retry = r.retry("retry", cfg->limits.retry)) cfg->limits.retry = *retry;
  if (auto o = r.boolean("ordered")) cfg->ordered = *o;
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return std::make_unique<Gather>(run, stats, cfg);
  };
}

}  // namespace aetl
