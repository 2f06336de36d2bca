#pragma once
#include <functional>

#include "cli/exit_codes.h"

namespace CLI {
class App;
}

namespace aetl {

/// `aetl fetch` / `afetch`: the built-in pipeline lines(inputs) → fetch → jsonl.
/// Registers the flags on `app`; the returned function runs the command.
std::function<ExitCode()> setup_fetch_command(CLI::App& app);

}  // namespace aetl
