#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/retry.h"
#include "run/pipeline_sink.h"
#include "run/run_context.h"
#include "run/schedule/schedule_spec.h"

namespace aetl {

/// What a kind's configuration yields: a function that builds the part at run time.
using SourceBuilder = std::function<std::unique_ptr<Source>(RunContext&)>;
using StageBuilder = std::function<std::unique_ptr<Stage>(RunContext&, PartStats&)>;
using SinkBuilder = std::function<std::unique_ptr<PipelineSink>(RunContext&, const SinkIdentity&)>;

/// Settings every sink has: `batch: {size, bytes, linger}` and `retry: {max, backoff}`.
struct SinkCommon {
  SinkBatching batching;
  RetryPolicy retry{3, std::chrono::milliseconds(100), std::chrono::milliseconds(5000)};
  bool exactly_once = false;  ///< set by a sink that keeps the checkpoint in its own commits
  std::string file;           ///< a file sink's path (`aetl replay` knows its dead letter by it); else empty
};

/// A pipeline ready to run: its parts as builders, in order, with what each
/// declares it can do (the plan (run/plan.h) fuses steps from that, before
/// anything is built). Made from a pipeline file (config/pipeline_spec.h) or by a
/// command (afetch).
struct Pipeline {
  std::string file;  ///< the pipeline file (the default state store is beside it); may be empty
  std::string name;  ///< keys the checkpoint
  struct SourcePart {
    std::string kind;
    SourceBuilder build;
    bool runs_steps = false;  ///< the source can run record steps inside its own lanes
    /// The source's position lives in a queue (entries acknowledged once handled,
    /// redelivered otherwise): the run keeps no state store, no lock and no
    /// checkpoint, and an exactly-once sink records each record's delivery ID
    /// (RunContext::delivery) in its transaction instead of a checkpoint.
    bool queue = false;
  };
  struct StagePart {
    std::string kind;
    std::string label;         ///< "filter#1": the kind and its position, for messages
    StageBuilder build;
    bool record_step = false;  ///< builds a one-step StepChainStage (filter, select, set)
  };
  struct SinkPart {
    std::string name = "sink";  ///< "sink" for `sink:`; its key under `sinks:`
    std::string kind;
    SinkBuilder build;
    SinkCommon common;
    bool row_step = false;  ///< the sink offers a row step (it encodes its rows ahead, in the lanes)
  };
  SourcePart source;
  std::vector<StagePart> stages;
  /// `sink:` (one, named "sink") or `sinks:` (several, in file order). A record
  /// goes to every sink, or to those its Record::routes names (a `route` stage).
  std::vector<SinkPart> sinks;
  std::optional<SinkPart> dead_letter;
  /// `schedule:`: when `aetl run` fires it (given(): false when the file has none).
  ScheduleSpec schedule;
  size_t channel_capacity = 2;  ///< batches between two parts (each ~256 KiB of input)
  std::chrono::milliseconds checkpoint_interval{1000};
};

}  // namespace aetl
