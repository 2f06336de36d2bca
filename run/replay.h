#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "run/pipeline.h"
#include "run/pipeline_runner.h"

namespace aetl {

struct ReplayOptions {
  std::string dead_letter_file;  ///< the dead-letter JSON Lines file to replay
  std::string state_path;        ///< the pipeline's state store (its lock; its checkpoint); empty: the default
  bool wait = false;             ///< another run holds the pipeline: wait (else SetupError busy)
  bool dry_run = false;
  bool quiet = false;            ///< no line per replay run          ///< records to stdout, new failures to stderr, the file left as it is
  RunOptions run;                ///< grace, deadline, display, prepare (the HTTP client)
  /// A jsonl sink writing to a path ("-": stdout): each replay run's dead letter,
  /// and the sinks of a dry run (config's plain_jsonl_sink; run/ cannot build kinds).
  std::function<Pipeline::SinkPart(const std::string& path)> jsonl_sink;
};

struct ReplayOutcome {
  uint64_t entries = 0;     ///< in the file (its committed part)
  uint64_t replayed = 0;    ///< run through the pipeline again to their end (succeeded + failed_again)
  uint64_t left = 0;        ///< replayable, but a replay that stopped early did not handle them: kept as they were
  uint64_t succeeded = 0;   ///< handled this time: taken out of the file
  uint64_t failed_again = 0;  ///< back in the file, with their new error and attempts
  uint64_t kept = 0;        ///< not replayable (a stage the pipeline no longer has, a line still not JSON): kept as they were
  RunOutcome run;           ///< the replay runs' worst
  bool complete = false;    ///< every replay run ran to its end (else `left` may be > 0)
  bool rewritten = false;   ///< the file was replaced
};

/// Runs the entries of a dead-letter file (`{"error", "stage", "input", "line",
/// "attempts", "record"}` lines) through `pipeline` again, each from the step it
/// failed at: a bad input line (stage: the source's kind, the record a string)
/// through every stage, once it parses as a JSON object; a record a stage failed
/// on from that stage on; a row a sink refused into that sink alone. The entries
/// that are now handled leave the file; the others stay in it, in their order,
/// with their new error and stage and the attempts added up, and the input and
/// line they first came from. The file is replaced at once (a temporary file,
/// fsync'd, renamed over it). A replay run stopped early (a signal, a failing
/// sink) hands over what its checkpoint covers: those entries leave the file or
/// take their new lines, the others stay as they were, and the later runs do
/// not start. A replay killed leaves the file as it was: replayed again, records
/// that had reached a sink are written again (a `key:` makes that an upsert).
/// Holds the pipeline's state
/// lock meanwhile (a run appending to the file must not interleave). Of the
/// pipeline's own dead-letter file, only the part its checkpoint covers is
/// replayed and kept: the entries of a killed run beyond it are left out (the
/// pipeline's next run writes them again, and appends to the rewritten file:
/// the checkpoint knows the file by its inode). Throws SetupError for a file
/// that cannot be read or holds a line that is not an entry ("FILE:LINE: ...").
ReplayOutcome replay_dead_letters(const Pipeline& pipeline, const ReplayOptions& options);

}  // namespace aetl
