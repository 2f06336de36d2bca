#pragma once
#include <functional>
#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace CLI {
class App;
}

namespace aetl {

/// `aetl completion bash|zsh|fish`: prints a completion script for aetl and afetch,
/// generated from the same command lines that parse them (build_command_line), so
/// it offers exactly the subcommands and flags that exist. The hidden `--table`
/// prints every flag as tab-separated lines (program, subcommand or -, flag).
std::function<ExitCode()> setup_completion_command(CLI::App& app);

/// The shells `aetl completion` knows.
std::vector<std::string> completion_words();

}  // namespace aetl
