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
//       ledger: seen.db            # afetch --state's ledger: skip requests done before
// `into` receives {"status", "ok", "body" (parsed JSON, else text), "error",
// "attempts", "time_ms"}. A transport error or a status outside 2xx (after the
// retries) sends the record to the dead letter, unless `keep_failures: true`.
// The stage itself (FetchStage) is afetch's too: afetch gives it request lines
// (stages/fetch/request_lines), a pipeline its templates (stages/fetch/request_template).
#include "stages/fetch.h"

#include <algorithm>

#include "engine/asio.h"

#include "config/kinds.h"
#include "config/redis_url_field.h"
#include "net/redis/shared_rate_limiter.h"
#include "engine/semaphore.h"
#include "engine/setup_error.h"
#include "engine/shutdown.h"
#include "engine/json_writer.h"
#include "engine/task_group.h"
#include "net/http/http_client.h"
#include "run/result_emitter.h"
#include "run/run_context.h"
#include "stages/expr_config.h"
#include "stages/fetch/fetch_request.h"
#include "stages/fetch/fetch_state.h"
#include "stages/fetch/ledger_follower.h"
#include "stages/fetch/request_template.h"

namespace aetl {

struct FetchStage::Parts {
  Parts(asio::any_io_executor ex, RunControl& control, HttpTransport& transport, const FetchStageOptions& o)
      : slots(ex, o.ordered ? o.limits.concurrency : 2 * o.limits.concurrency),
        policy(ex, control, transport, o.limits),
        tasks(ex),
        emitter_task(ex) {}
  AsyncSemaphore slots;  // items started and not yet handed downstream (the reorder window)
  AttemptPolicy policy;
  TaskGroup tasks;
  TaskGroup emitter_task;
  std::optional<ResultEmitter> emitter;
};

FetchStage::FetchStage(StageContext& ctx, FetchStageOptions options, HttpTransport& transport, FetchMode& mode)
    : ctx_(ctx),
      options_(std::move(options)),
      mode_(mode),
      parts_(std::make_unique<Parts>(ctx.io.get_executor(), ctx.control, transport, options_)) {
  parts_->policy.set_observer(&mode_);
}

FetchStage::~FetchStage() = default;

asio::awaitable<void> FetchStage::run(BatchChannel& in, BatchChannel& out) {
  auto& P = *parts_;
  size_t flush_at = std::min(options_.batch_size, std::max<size_t>(1, P.slots.permits() / 2));
  P.emitter.emplace(ctx_.io.get_executor(), out, P.slots, options_.ordered, flush_at, options_.linger);
  P.emitter_task.spawn(P.emitter->run());

  std::exception_ptr error;
  try {
    co_await dispatch(in);
  } catch (...) {
    error = std::current_exception();
    ctx_.control.request_abort();
  }
  co_await P.tasks.wait_all();
  P.emitter->finish();
  co_await P.emitter_task.wait_all();
  if (!error) error = P.tasks.first_error();
  if (!error) error = P.emitter_task.first_error();
  if (!error) error = P.emitter->error();
  if (error) std::rethrow_exception(error);
}

asio::awaitable<void> FetchStage::skip_done(std::vector<FetchMode::Made>& made) {
  std::vector<std::string> keys;
  std::vector<size_t> at;
  for (size_t i = 0; i < made.size(); ++i) {
    if (!made[i].job || made[i].job->key.empty()) continue;
    keys.push_back(made[i].job->key);
    at.push_back(i);
  }
  if (keys.empty()) co_return;
  std::vector<char> done = co_await options_.filter->already_done(std::move(keys));
  bool any = false;
  for (size_t k = 0; k < done.size(); ++k) {
    if (!done[k]) continue;
    FetchMode::Made& m = made[at[k]];
    mode_.skipped(*m.job);
    m.job.reset();
    any = true;
  }
  if (any) std::erase_if(made, [](const FetchMode::Made& m) { return !m.job && !m.pass_on; });
}

asio::awaitable<void> FetchStage::dispatch(BatchChannel& in) {
  auto& P = *parts_;
  std::vector<FetchMode::Made> made;
  for (;;) {
    Batch batch = co_await receive_batch(in);
    if (batch.empty()) break;
    if (ctx_.control.stopping()) continue;  // drain the source without starting anything
    mode_.received(batch);
    made.clear();
    made.reserve(batch.size());
    for (auto& record : batch) {
      FetchMode::Made m = mode_.make(record);
      if (m.job || m.pass_on) made.push_back(std::move(m));
    }
    if (options_.filter) co_await skip_done(made);
    for (auto& m : made) {
      if (ctx_.control.stopping()) break;
      co_await P.slots.acquire();
      if (ctx_.control.stopping()) {
        P.slots.release();
        break;
      }
      uint64_t seq = next_seq_++;
      if (!m.job) {
        P.emitter->push(seq, std::move(m.pass_on));
        continue;
      }
      P.tasks.spawn(fetch_guarded(std::move(m.job), seq));
      co_await mode_.wait_room();
    }
  }
}

asio::awaitable<void> FetchStage::fetch_guarded(std::unique_ptr<FetchJob> job, uint64_t seq) {
  std::exception_ptr error;
  try {
    co_await fetch_one(*job, seq);
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    // A bug or a resource failure, not a per-request outcome: stop the run, and
    // still hand in the sequence number so an ordered emitter is not left waiting.
    ctx_.control.request_abort();
    parts_->emitter->push(seq, std::nullopt);
    std::rethrow_exception(error);
  }
}

asio::awaitable<void> FetchStage::fetch_one(FetchJob& job, uint64_t seq) {
  auto& P = *parts_;
  Attempted attempted;
  if (co_await job.open()) {
    auto before = [&job] { return job.before_attempt(); };
    attempted = co_await P.policy.perform(job.request(), job.host, job.body(), before);
  }
  if (attempted.dropped) {
    co_await job.drop();
    P.emitter->push(seq, std::nullopt);
    co_return;
  }
  FetchJob::Finished finished = co_await job.finish(attempted);
  if (options_.follower && !job.key.empty()) options_.follower->expect(job.pos, std::move(job.key), finished.outcome);
  P.emitter->push(seq, std::move(finished.record));
}

namespace {

/// The `fetch` stage of a pipeline: the one FetchStage with the templates' mode,
/// the run's HTTP client and, with `ledger:`, the ledger and its follower.
class PipelineFetch final : public Stage {
 public:
  PipelineFetch(RunContext& run, PartStats& stats, std::shared_ptr<const FetchConfig> cfg) : run_(run) {
    if (!cfg->ledger.empty() && !run.dry_run) {
      std::unique_ptr<FetchState> ledger;
      try {
        ledger = std::make_unique<FetchState>(cfg->ledger);
      } catch (const SetupError& e) {
        throw SetupError(stats.name + ": ledger: " + e.what());
      }
      follower_ = std::make_unique<LedgerFollower>(std::move(ledger), run.tracker, run.checkpoints, run.stage.io.get_executor(),
                                                   stats.name + ": ledger " + cfg->ledger);
    }
    mode_ = std::make_unique<RequestTemplates>(run, stats, cfg, follower_.get());
    options_.limits = cfg->limits;
    options_.ordered = cfg->ordered;
    if (follower_) {
      options_.filter = &follower_->ledger();
      options_.follower = follower_.get();
    }
  }

  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override {
    FetchStage stage(run_.stage, options_, run_.http(), *mode_);  // the client is made on first use
    co_await stage.run(in, out);
  }

 private:
  RunContext& run_;
  std::unique_ptr<LedgerFollower> follower_;
  std::unique_ptr<RequestTemplates> mode_;
  FetchStageOptions options_;
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
    {"concurrency", FieldType::integer, "32",
     "requests in flight (afetch -j has the same default); auto: each host's limit adapts (from 4, up to per_host "
     "or 256; ×0.9 on 429, 503, timeouts or rising latency)", "auto"},
    {"per_host", FieldType::integer, "0", "requests in flight per host:port (0: no extra limit)", "4"},
    {"rate", FieldType::rate, "", "requests started per second at most (none: no limit)", "50/s"},
    {"share_rate.url", FieldType::string, "redis://127.0.0.1:6379/0",
     "keep `rate` in this Redis server, shared by every process with the same key (redis:// or unix:)",
     "\"redis://queue:6379/0\""},
    {"share_rate.key", FieldType::string, "required", "the shared rate's name (its Redis key is aetl:rate:KEY)", "geo-api"},
    {"retry.max", FieldType::integer, "2",
     "retries after the first attempt (connection errors, timeouts, 429, 5xx); `retry: N` is short for it", "5"},
    {"retry.backoff", FieldType::duration_range, "250ms..30s", "waits between attempts, full jitter, capped",
     "200ms..30s"},
    {"ordered", FieldType::boolean, "false", "emit records in input order (default: as they complete)", "true"},
    {"into", FieldType::string, "response",
     "the field receiving {status, ok, body, error, attempts, time_ms}", "geo"},
    {"keep_failures", FieldType::boolean, "false",
     "a failed request passes on with ok: false instead of going to the dead letter", "true"},
    {"ledger", FieldType::string, "",
     "an SQLite file (afetch --state's format): requests done before are skipped, transient failures fetched again",
     "seen.db"},
};
const std::string_view kExamples[] = {
    "{url: 'http://geo.internal/ip/{ip}', concurrency: 32, per_host: 4, rate: 50/s, retry: {max: 5, backoff: "
    "200ms..30s}, ordered: true, into: geo, keep_failures: true, ledger: seen.db}",
    "{url: 'https://api.example.com/v1/{id}', rate: 50/s, share_rate: {url: \"redis://queue:6379/0\", key: api}}",
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
  read_concurrency(r, cfg->limits);
  if (auto n = r.integer("per_host", 0, 10000)) cfg->limits.per_host = static_cast<size_t>(*n);
  if (auto rate = r.rate("rate")) cfg->limits.rate = *rate;
  if (auto share = r.section("share_rate")) {
    redis::RedisUrl url = read_redis_url(*share, problems);
    std::string key;
    if (auto k = share->string("key", true)) {
      if (k->text.empty()) problems.add(k->where, "share_rate.key: empty");
      key = k->text;
    }
    share->finish();
    if (cfg->limits.rate <= 0) problems.add(share->where(), "share_rate: needs rate: (the rate to share)");
    cfg->limits.shared_rate = redis::shared_rate_gate(url, key, cfg->limits.rate, cfg->limits.burst);
  }
  if (auto retry = r.retry("retry", cfg->limits.retry)) cfg->limits.retry = *retry;
  if (auto o = r.boolean("ordered")) cfg->ordered = *o;
  if (auto into = r.string("into")) {
    if (into->text.empty()) problems.add(into->where, "into: an empty field name");
    cfg->into = into->text;
    cfg->into_json.clear();
    append_json_string(cfg->into_json, into->text);
    cfg->into_json += ':';
  }
  if (auto k = r.boolean("keep_failures")) cfg->keep_failures = *k;
  if (auto l = r.string("ledger")) {
    if (l->text.empty()) problems.add(l->where, "ledger: an empty path");
    cfg->ledger = l->text;
  }
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return std::make_unique<PipelineFetch>(run, stats, cfg);
  };
}

}  // namespace aetl
