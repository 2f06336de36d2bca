#pragma once
#include <string>

#include "run/pipeline.h"
#include "net/http/attempt_policy.h"
#include "stages/fetch/fetch_request.h"

namespace CLI {
class App;
}

namespace aetl {

/// afetch's Redis Streams flags: --push (a producer: request lines become stream
/// entries, nothing is fetched), --from-stream (a worker of a consumer group:
/// requests come from the stream, results go to stdout, --output or --to-stream).
struct StreamFlags {
  std::string redis = "redis://127.0.0.1:6379/0";
  std::string push;         ///< stream to push requests into
  std::string from_stream;  ///< stream to take requests from
  std::string to_stream;    ///< stream to add result lines to
  std::string group = "afetch";
  std::string consumer;
  std::string claim_idle = "60s";
  int max_deliveries = 5;
  std::string stop_when_idle;
  std::string share_rate;   ///< name of a --rate shared through Redis

  bool pushing() const { return !push.empty(); }
  bool working() const { return !from_stream.empty(); }
};

/// Registers the flags (in their own help group).
void add_stream_flags(CLI::App& app, StreamFlags& flags);

/// Checks the flags against the rest of the command line (`inputs` given,
/// `state`, `output` and `append` as typed); throws SetupError.
void check_stream_flags(const StreamFlags& flags, bool inputs, const std::string& state, const std::string& output,
                        bool append);

/// With --share-rate: `limits`' rate is kept in Redis under that name, shared by
/// every afetch (and fetch stage) using it. Throws SetupError without --rate.
void share_rate(const StreamFlags& flags, AttemptLimits& limits);

/// The worker's source: the stream through the consumer group (a queue part),
/// reading `count` entries at a time (the worker's concurrency: a worker holds
/// little more than it works on, so the others get their share).
Pipeline::SourcePart stream_source(const StreamFlags& flags, size_t count);
/// The sink for result lines with --to-stream, or for requests with --push.
Pipeline::SinkPart stream_sink(const StreamFlags& flags, const std::string& stream);
/// The --push stage: request lines to JSON request objects (-X, -H, --data applied).
Pipeline::StagePart push_stage(RequestDefaults defaults);

}  // namespace aetl
