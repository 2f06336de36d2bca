#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "cli/exit_codes.h"

namespace aetl {

struct PipelineSpec;

struct RunOptions {
  std::string state_path;  ///< empty: default_state_path(file)
  bool from_start = false;
  bool wait = false;       ///< another run holds the state lock: wait for it (else exit 75)
  bool dry_run = false;
  uint64_t limit = 0;
  std::chrono::milliseconds grace{5000};
  std::chrono::milliseconds deadline{0};
  std::string metrics_out;
  bool quiet = false;
  bool progress = false;  ///< draw the progress line (stderr is a terminal)
};

/// Runs a checked pipeline to its end and returns the exit code (0 done, 1 records
/// failed with no dead letter or a sink failed, 130 stopped by a signal). Errors
/// in the setup (a missing input file, an unusable output) throw UsageError (2);
/// another run holding the state lock (without `wait`), or a newer run taking over
/// an exactly-once sink, throws UsageError(ExitCode::busy) (75).
ExitCode run_pipeline_spec(const PipelineSpec& spec, const RunOptions& options);

}  // namespace aetl
