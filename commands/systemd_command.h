#pragma once
#include <functional>

#include "cli/exit_codes.h"

namespace CLI {
class App;
}

namespace aetl {

/// `aetl systemd PIPELINE.yaml`: prints (or writes) a `.service` and `.timer`
/// pair that runs the pipeline's schedule with systemd (`aetl run --once` at each
/// slot; Persistent=true catches up missed fires).
std::function<ExitCode()> setup_systemd_command(CLI::App& app);

}  // namespace aetl
