#include "commands/command_table.h"

#include <vector>

#include <CLI/CLI.hpp>

#include "commands/completion_command.h"
#include "commands/explain_command.h"
#include "commands/fetch_command.h"
#include "commands/queue_command.h"
#include "commands/replay_command.h"
#include "commands/run_command.h"
#include "commands/systemd_command.h"

namespace aetl {

const std::vector<CommandRow>& command_table() {
  static const std::vector<CommandRow> table = {
      {"fetch", "Fetch many URLs concurrently; one JSON line per URL (also installed as afetch)", &setup_fetch_command},
      {"run", "Run a pipeline file: source → stages → sink, with checkpoints", &setup_run_command},
      {"replay", "Run the records of a dead-letter file through the pipeline again, from where each failed",
       &setup_replay_command},
      {"validate", "Check pipeline files (file:line:col for every problem); run nothing", &setup_validate_command},
      {"list", "List the source, stage and sink kinds of pipeline files", &setup_list_command},
      {"explain", "Print the fields of one kind (name, type, default, description, example)", &setup_explain_command,
       &explain_words},
      {"systemd", "Print a .service and .timer pair that runs a scheduled pipeline with systemd",
       &setup_systemd_command},
      {"queue", "Show a Redis stream's state: length, groups, pending entries, consumers, lag, dead letters",
       &setup_queue_command},
      {"completion", "Print the shell completion script for aetl and afetch: bash, zsh or fish",
       &setup_completion_command, &completion_words},
  };
  return table;
}

namespace {

void add_global_flags(CLI::App& app, GlobalFlags& g) {
  app.add_option("--log-level", g.log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  app.add_option("--log-format", g.log_format, "text or json")->capture_default_str();
}

}  // namespace

void build_command_line(CLI::App& app, bool as_afetch, GlobalFlags& globals, std::function<ExitCode()>& run) {
  app.set_version_flag("--version", std::string(AETL_VERSION));
  add_global_flags(app, globals);
  if (as_afetch) {
    run = setup_fetch_command(app);
    return;
  }
  for (const auto& row : command_table()) {
    CLI::App* sub = app.add_subcommand(row.name, row.summary);
    add_global_flags(*sub, globals);
    auto runner = row.setup(*sub);
    sub->callback([&run, runner] { run = runner; });
  }
  app.require_subcommand(1);
}

}  // namespace aetl
