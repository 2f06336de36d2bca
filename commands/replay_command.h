#pragma once
#include <functional>

#include "cli/exit_codes.h"

namespace CLI {
class App;
}

namespace aetl {

/// `aetl replay DEADLETTER.jsonl PIPELINE.yaml`: runs the dead-lettered records
/// through the pipeline again from where each failed (run/replay.h).
std::function<ExitCode()> setup_replay_command(CLI::App& app);

}  // namespace aetl
