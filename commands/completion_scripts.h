#pragma once
#include <string>
#include <vector>

namespace aetl {

/// A flag as shell completion offers it.
struct CompletionFlag {
  std::vector<std::string> names;  ///< "-j", "--concurrency"
  bool takes_value = false;
  std::string help;
};

/// A program (aetl, afetch) or a subcommand: its flags and what its positional
/// arguments complete to (`words`, else file names when `files`).
struct CompletionCommand {
  std::string name;
  std::string summary;
  std::vector<CompletionFlag> flags;
  std::vector<std::string> words;
  bool files = false;
};

/// Everything the scripts complete; aetl.words are its subcommands' names.
struct CompletionModel {
  CompletionCommand aetl;
  std::vector<CompletionCommand> subcommands;
  CompletionCommand afetch;
};

/// Built from the command lines themselves (commands/completion_command.cpp).
CompletionModel completion_model();

/// The scripts: each completes aetl and afetch.
std::string bash_completion(const CompletionModel& m);
std::string zsh_completion(const CompletionModel& m);
std::string fish_completion(const CompletionModel& m);
/// Lines "program<TAB>subcommand (or -)<TAB>flag", one per flag name.
std::string completion_table(const CompletionModel& m);

}  // namespace aetl
