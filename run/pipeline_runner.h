#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"
#include "run/checkpoint.h"

namespace aetl {

struct Pipeline;
struct RunContext;
class RunDisplay;

struct RunOptions {
  std::string state_path;  ///< empty: default_state_path(file)
  bool from_start = false;
  bool wait = false;       ///< another run holds the state lock: wait for it (else exit 75)
  bool holds_lock = false; ///< the caller holds the state store's run lock (a scheduled fire)
  bool dry_run = false;    ///< no state store, no checkpoint (the command points the sinks elsewhere)
  /// No state store, no lock and no checkpoint: the run keeps no position (afetch,
  /// whose --state ledger is the fetch stage's own and locked by the command).
  bool stateless = false;
  uint64_t limit = 0;
  std::chrono::milliseconds grace{5000};
  std::chrono::milliseconds deadline{0};
  std::string metrics_out;
  bool state_in_summary = true;
  bool append_files = false;     ///< RunContext::append_files
  /// Without a checkpoint to resume from: the lengths file sinks start from (cut
  /// back to), as if resumed (`aetl replay` continues the pipeline's files).
  std::map<std::string, uint64_t> file_lengths;  ///< the summary's last line says where the checkpoint is
  RunDisplay* display = nullptr;  ///< what a person sees (progress, summary); nullptr: nothing
  /// Called once the run's context exists, before any part is built: the command
  /// provides what the parts share (the HTTP client with its options) and, if it
  /// wants, what the display counts (RunContext::work).
  std::function<void(RunContext&)> prepare;
  /// Called once the loop has stopped, before the run's context is gone.
  std::function<void()> ended;
  /// Awaited before each commit of an exactly-once main sink; throws
  /// CheckpointTakenOver to stop the run without committing (a scheduled fire
  /// whose Redis lock was lost).
  std::function<asio::awaitable<void>()> fence;
  /// The closing report instead of the parts' table (afetch's), given the run's
  /// seconds; empty: the table.
  std::function<std::vector<std::string>(double seconds)> summary;
};

/// How a run ended; cli/ alone turns it into an exit code.
struct RunOutcome {
  /// Records failed with no dead letter, a sink failed, the checkpoint could not
  /// be saved, or the deadline cut the run short.
  bool failed = false;
  bool interrupted = false;  ///< stopped by SIGINT/SIGTERM
  bool taken_over = false;   ///< another run committed to the exactly-once sink meanwhile
  bool closed_early = false; ///< the sink's reader went away (a closed pipe): a quiet stop, no summary
  uint64_t failed_records = 0; ///< records that failed with no dead letter
};

/// Runs a checked pipeline to its end. Errors in the setup (a missing input file,
/// an unusable output) throw SetupError; another run holding the state lock
/// (without `wait`) throws SetupError(Kind::busy).
RunOutcome run_pipeline_spec(const Pipeline& pipeline, const RunOptions& options);

/// The checkpoint a run of `pipeline` would resume from: its exactly-once sink's
/// (when it has one sink, which is then built: it connects) or the state store's
/// at `state_path`; nothing if there is none. The caller holds the run lock.
/// Throws SetupError.
std::optional<Checkpoint> saved_checkpoint(const Pipeline& pipeline, const RunOptions& options,
                                           const std::string& state_path);

/// Replaces that checkpoint with `change(it)`, where it lives (the exactly-once
/// sink's, compared-and-set as a run does; or the state store's); does nothing
/// when there is none. `aetl replay` records there the lengths of the file sinks
/// it appended to and the dead letter it rewrote. The caller holds the run lock.
/// Throws SetupError (CheckpointTakenOver if another run moved it meanwhile).
void amend_checkpoint(const Pipeline& pipeline, const RunOptions& options, const std::string& state_path,
                      const std::function<void(Checkpoint&)>& change);

}  // namespace aetl
