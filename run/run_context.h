#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/record.h"
#include "run/checkpoint.h"
#include "engine/stage_context.h"

namespace aetl {

class AckTracker;
class DeadLetters;
class HttpClient;
struct Checkpoint;

/// Counters of one part of a pipeline, for progress, summary and metrics.
/// Written on the loop thread; read by the progress display on the loop too.
struct PartStats {
  std::string name;      ///< "filter#1", "sink sqlite"
  uint64_t in = 0;       ///< records received
  uint64_t out = 0;      ///< records passed on (sinks: written)
  uint64_t dropped = 0;  ///< filtered out (a sink: skipped, committed by an earlier delivery or attempt)
  uint64_t failed = 0;   ///< sent to the dead letter (or failed without one)
  uint64_t in_flight = 0;
  uint64_t batches = 0;
  double busy_seconds = 0;  ///< time spent working on batches
  /// Events a part counts of its own, by name (the redis source: "acked",
  /// "claimed", ...; an exactly-once sink: "redelivered"), for the metrics.
  std::map<std::string, uint64_t> events;
  /// Sinks: writes by why they went ("size", "bytes", "linger", "end": the input
  /// ended, "stop": the run was stopping).
  std::map<std::string, uint64_t> flushes;
  /// Stages with `concurrency: auto`: each host's current limit.
  std::map<std::string, uint64_t> host_limits;
};

/// The size of the source's input, for the progress display's percent and ETA
/// (how much is done: AckTracker::handled_bytes()). Set by the source before the
/// run starts; `known` only when the whole input's size is known up front (plain
/// files, not stdin, gzip or URLs).
struct InputSize {
  bool known = false;
  uint64_t total = 0;  ///< bytes
};

/// Progress counted in units of work (afetch: requests) instead of by part, for
/// the display: done of total, in flight, errors.
struct WorkCounts {
  uint64_t done = 0;         ///< finished, whatever the outcome
  uint64_t total = 0;        ///< in the whole input, once known
  bool total_known = false;
  uint64_t in_flight = 0;
  uint64_t errors = 0;
  /// With -j auto: the hosts' current limits, for the display ("limit 12", or
  /// "limits 3 hosts 4..17"); empty otherwise.
  std::string limits;
};

/// The run's checkpoints as the next run reads them: saved in the state store, or
/// committed by an exactly-once main sink (each of its writes, and the last one at
/// the end). A handled record is safe for good only once a checkpoint covering it
/// is saved: a resumed run starts from the last saved checkpoint and cuts file
/// sinks (a dead-letter file too) back to the lengths it recorded. Parts that act
/// on handled records for good (the fetch ledger) follow these events. Loop thread only.
struct CheckpointEvents {
  bool gated = false;  ///< the run keeps checkpoints (set before the parts are built)
  std::vector<std::function<void()>> on_taken;  ///< a save took its snapshot of the tracker
  std::vector<std::function<void()>> on_saved;  ///< the save that took the last snapshot is durable
  void taken() const {
    for (const auto& f : on_taken) f();
  }
  void saved() const {
    for (const auto& f : on_saved) f();
  }
};

/// What the kinds see of a running pipeline.
struct RunContext {
  RunContext(StageContext& s, AckTracker& t, DeadLetters& d) : stage(s), tracker(t), dead_letters(d) {}

  StageContext& stage;
  AckTracker& tracker;
  DeadLetters& dead_letters;
  std::string pipeline_name;            ///< keys checkpoints stored in sinks
  const Checkpoint* resume = nullptr;  ///< the checkpoint a resumed run starts from
  uint64_t limit = 0;                  ///< --limit: records the source reads at most (0: all)
  bool dry_run = false;
  /// File sinks append whatever their `append:` says (`aetl replay` adds to
  /// what the pipeline wrote; a fresh run would otherwise truncate).
  bool append_files = false;
  /// The source is a queue (Pipeline::SourcePart::queue); set before the parts are built.
  bool queue_source = false;
  /// What a queue source knows of the delivery a record came from.
  struct Delivery {
    /// Its identity (the stream and entry ID), the same on every redelivery; the
    /// sink driver adds the record's part (Record::part) for records a stage
    /// split. Empty when the source no longer knows the position (the record is
    /// then written without one, never skipped).
    std::string id;
    /// The entry's first delivery (not claimed from a consumer that left it
    /// pending): no earlier delivery can have committed it, unless this worker
    /// stood still and another took it over meanwhile (which keeping the IDs
    /// detects), so a sink need not look its ID up first.
    bool first = false;
  };
  /// Set by a queue source. Loop thread.
  std::function<Delivery(const Position&)> delivery;
  std::vector<std::unique_ptr<PartStats>> parts;
  InputSize input;
  CheckpointEvents checkpoints;
  std::function<WorkCounts()> work;  ///< set by a command that counts units of work; read by the display
  std::function<HttpClient&()> http;  ///< the shared HTTP client, created on first use
  /// The durable lengths of the file sinks right now, for checkpoints.
  std::function<std::map<std::string, uint64_t>()> sink_lengths;
  /// Several sinks: what each file sink holds right now (Checkpoint::sink_marks).
  std::function<std::map<std::string, std::vector<InputMark>>()> sink_marks;

  /// The pipeline's sinks by name, in order (a `route` stage's targets are their
  /// indices); set before the stages are built.
  std::vector<std::string> sink_names;

  PartStats& add_part(std::string name) {
    parts.push_back(std::make_unique<PartStats>());
    parts.back()->name = std::move(name);
    return *parts.back();
  }
};

}  // namespace aetl
