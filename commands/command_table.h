#pragma once
#include <functional>

#include "cli/exit_codes.h"

namespace CLI {
class App;
}

namespace aetl {

/// Registers a command's flags on `app` and returns the function that runs it
/// once the command line has been parsed.
using CommandSetup = std::function<std::function<ExitCode()>(CLI::App& app)>;

/// One row per subcommand of `aetl`.
struct CommandRow {
  const char* name;
  const char* summary;
  CommandSetup setup;
};

/// The table of subcommands, in the order `aetl --help` lists them.
const std::vector<CommandRow>& command_table();

}  // namespace aetl
