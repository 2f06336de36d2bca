#include "commands/fetch_streams.h"

#include <algorithm>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "engine/duration.h"
#include "engine/setup_error.h"
#include "net/redis/redis_url.h"
#include "net/redis/shared_rate_limiter.h"
#include "run/step_chain.h"
#include "sinks/redis.h"
#include "sources/redis.h"
#include "stages/fetch/request_entries.h"

namespace aetl {
namespace {

redis::RedisUrl redis_url_flag(const std::string& text) {
  try {
    return redis::parse_redis_url(text);
  } catch (const std::invalid_argument& e) {
    throw SetupError(std::string("--redis: ") + e.what());
  }
}

std::chrono::milliseconds duration_of(const char* flag, const std::string& text) {
  auto d = parse_duration(text);
  if (!d) throw SetupError(std::string(flag) + ": invalid duration '" + text + "' (examples: 250ms, 10s, 2m)");
  return *d;
}

}  // namespace

void add_stream_flags(CLI::App& app, StreamFlags& f) {
  const std::string group = "Redis Streams (workers on many machines)";
  app.add_option("--redis", f.redis, "Redis server: redis://[user:password@]host[:port][/db] or unix:/path; "
                                     "password also from REDISCLI_AUTH")
      ->capture_default_str()
      ->group(group);
  app.add_option("--push", f.push, "Push the request lines into this stream instead of fetching them")->group(group);
  app.add_option("--from-stream", f.from_stream, "Be a worker: take requests from this stream (consumer group --group)")
      ->group(group);
  app.add_option("--to-stream", f.to_stream, "With --from-stream: add result lines to this stream, not stdout")
      ->group(group);
  app.add_option("--group", f.group, "The workers' consumer group (created if missing)")->capture_default_str()->group(group);
  app.add_option("--consumer", f.consumer, "This worker's name in the group (default: host-pid)")->group(group);
  app.add_option("--claim-idle", f.claim_idle, "Take over requests other workers left pending this long")
      ->capture_default_str()
      ->group(group);
  app.add_option("--max-deliveries", f.max_deliveries, "A request delivered this often is not fetched again (logged, left pending)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--share-rate", f.share_rate,
                 "Share --rate with every afetch using this NAME through the --redis server (a fleet-wide rate)")
      ->group(group);
  app.add_option("--stop-when-idle", f.stop_when_idle, "End when no request came for this long (default: run until stopped)")
      ->group(group);
}

void check_stream_flags(const StreamFlags& f, bool inputs, const std::string& state, const std::string& output,
                        bool append) {
  if (f.pushing() && f.working()) throw SetupError("--push and --from-stream: a run pushes or works, not both");
  if (!f.to_stream.empty() && !f.working()) throw SetupError("--to-stream needs --from-stream");
  if (f.working() && inputs) throw SetupError("--from-stream: the requests come from the stream, not from input files");
  if (f.working() && !state.empty())
    throw SetupError("--state: a worker keeps no state (the stream's consumer group is its state)");
  if (f.pushing() && !state.empty()) throw SetupError("--state: --push fetches nothing");
  if (!f.to_stream.empty() && (output != "-" || append)) throw SetupError("--to-stream and --output: choose one");
  if (f.pushing() && output != "-") throw SetupError("--output: --push writes no result lines");
  if (f.max_deliveries < 1) throw SetupError("--max-deliveries must be at least 1");
  if (f.pushing() || f.working() || !f.share_rate.empty()) redis_url_flag(f.redis);
  if (!f.share_rate.empty() && f.pushing()) throw SetupError("--share-rate: --push fetches nothing");
  if (f.working()) {
    duration_of("--claim-idle", f.claim_idle);
    if (!f.stop_when_idle.empty()) duration_of("--stop-when-idle", f.stop_when_idle);
  }
}

void share_rate(const StreamFlags& f, AttemptLimits& limits) {
  if (f.share_rate.empty()) return;
  if (limits.rate <= 0) throw SetupError("--share-rate needs --rate (the rate to share)");
  limits.shared_rate = redis::shared_rate_gate(redis_url_flag(f.redis), f.share_rate, limits.rate, limits.burst);
}

Pipeline::SourcePart stream_source(const StreamFlags& f, size_t count) {
  auto cfg = std::make_shared<RedisSourceConfig>();
  cfg->count = std::clamp<size_t>(count, 1, 1000);
  cfg->url = redis_url_flag(f.redis);
  cfg->stream = f.from_stream;
  cfg->group = f.group;
  cfg->consumer = f.consumer;
  cfg->claim_idle = std::max(duration_of("--claim-idle", f.claim_idle), std::chrono::milliseconds(100));
  cfg->max_deliveries = f.max_deliveries;
  if (!f.stop_when_idle.empty()) cfg->stop_when_idle = duration_of("--stop-when-idle", f.stop_when_idle);
  Pipeline::SourcePart part;
  part.kind = "redis";
  part.build = redis_source(cfg);
  part.queue = true;
  return part;
}

Pipeline::SinkPart stream_sink(const StreamFlags& f, const std::string& stream) {
  RedisSinkConfig cfg;
  cfg.url = redis_url_flag(f.redis);
  cfg.stream = stream;
  Pipeline::SinkPart part;
  part.kind = "redis";
  part.build = redis_sink(cfg);
  part.common.batching.size = 1000;
  part.common.batching.linger = std::chrono::milliseconds(20);
  part.common.retry = RetryPolicy{10, std::chrono::milliseconds(200), std::chrono::milliseconds(5000)};
  return part;
}

Pipeline::StagePart push_stage(RequestDefaults defaults) {
  Pipeline::StagePart part;
  part.kind = "push";
  part.label = "push";
  auto step = request_entry_step(std::move(defaults));
  part.build = [step](RunContext& run, PartStats& stats) { return step_stage(run, stats, step); };
  part.record_step = false;
  return part;
}

}  // namespace aetl
