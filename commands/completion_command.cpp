#include "commands/completion_command.h"

#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "commands/command_table.h"
#include "commands/completion_scripts.h"
#include "engine/setup_error.h"

namespace aetl {
namespace {

std::vector<CompletionFlag> flags_of(const CLI::App& app) {
  std::vector<CompletionFlag> out;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional() || opt->get_group().empty()) continue;  // hidden
    CompletionFlag f;
    for (const auto& s : opt->get_snames()) f.names.push_back("-" + s);
    for (const auto& l : opt->get_lnames()) f.names.push_back("--" + l);
    f.takes_value = opt->get_items_expected_max() > 0;
    f.help = opt->get_description();
    out.push_back(std::move(f));
  }
  return out;
}

bool has_positional(const CLI::App& app) {
  for (const CLI::Option* opt : app.get_options())
    if (opt->get_positional()) return true;
  return false;
}

CompletionCommand command_of(const CLI::App& app, std::string name, std::vector<std::string> (*words)()) {
  CompletionCommand c;
  c.name = std::move(name);
  c.summary = app.get_description();
  c.flags = flags_of(app);
  if (words) c.words = words();
  else c.files = has_positional(app);
  return c;
}

}  // namespace

CompletionModel completion_model() {
  CompletionModel m;
  {
    CLI::App app("afetch", "afetch");
    GlobalFlags globals;
    std::function<ExitCode()> run;
    build_command_line(app, true, globals, run);
    m.afetch = command_of(app, "afetch", nullptr);
  }
  CLI::App app("aetl", "aetl");
  GlobalFlags globals;
  std::function<ExitCode()> run;
  build_command_line(app, false, globals, run);
  m.aetl = command_of(app, "aetl", nullptr);
  m.aetl.files = false;
  for (const auto& row : command_table()) {
    const CLI::App* sub = app.get_subcommand(row.name);
    m.aetl.words.push_back(row.name);
    m.subcommands.push_back(command_of(*sub, row.name, row.words));
  }
  return m;
}

std::vector<std::string> completion_words() { return {"bash", "zsh", "fish"}; }

std::function<ExitCode()> setup_completion_command(CLI::App& app) {
  auto shell = std::make_shared<std::string>();
  auto as_table = std::make_shared<bool>(false);
  app.add_option("shell", *shell, "bash, zsh or fish")->check(CLI::IsMember(completion_words()));
  app.add_flag("--table", *as_table, "Every flag of every command, tab-separated")->group("");
  return [shell, as_table]() -> ExitCode {
    if (shell->empty() && !*as_table) throw SetupError("completion: which shell? bash, zsh or fish");
    CompletionModel m = completion_model();
    std::string out = *as_table         ? completion_table(m)
                      : *shell == "bash" ? bash_completion(m)
                      : *shell == "zsh"  ? zsh_completion(m)
                                         : fish_completion(m);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return ExitCode::ok;
  };
}

}  // namespace aetl
