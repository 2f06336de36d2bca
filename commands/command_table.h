#pragma once
#include <functional>
#include <string>
#include <vector>

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
  /// The words its positional arguments take, for shell completion; nullptr: file names.
  std::vector<std::string> (*words)() = nullptr;
};

/// The table of subcommands, in the order `aetl --help` lists them.
const std::vector<CommandRow>& command_table();

/// The flags every command takes (besides --help and --version).
struct GlobalFlags {
  std::string log_level = "info";
  std::string log_format = "text";
};

/// Builds the whole command line on `app`: afetch's flags (`as_afetch`) or aetl's
/// subcommands from the table, each with the global flags. After a successful
/// parse, `run` holds the function that runs the chosen command. Shell completion
/// builds the same command lines, so it offers exactly what parsing accepts.
void build_command_line(CLI::App& app, bool as_afetch, GlobalFlags& globals, std::function<ExitCode()>& run);

}  // namespace aetl
