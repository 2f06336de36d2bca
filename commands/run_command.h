#pragma once
#include <functional>
#include <optional>
#include <string>

#include "cli/exit_codes.h"
#include "run/schedule/schedule_spec.h"

namespace CLI {
class App;
}

namespace aetl {

struct Pipeline;

/// `aetl run PIPELINE.yaml`: runs a pipeline file (DESIGN.md §6).
std::function<ExitCode()> setup_run_command(CLI::App& app);

/// `aetl validate PIPELINE.yaml`: checks a pipeline file and runs nothing.
std::function<ExitCode()> setup_validate_command(CLI::App& app);

/// The pipeline file's schedule with --every or --cron (`every`, `cron`; empty
/// when not given) put in place of its times. Throws SetupError for a bad flag.
ScheduleSpec command_line_schedule(ScheduleSpec file, const std::string& every, const std::string& cron);

/// Prints every problem of a pipeline file to stderr: `file:line:col: message`,
/// then the line of the file (passwords in it masked) and a caret under the column.
void print_config_problems(const class ConfigError& e);

/// Loads a pipeline file for a command that runs it: its problems printed
/// (print_config_problems) and nothing returned when it has any (exit 2).
std::optional<Pipeline> load_pipeline_or_report(const std::string& file);

}  // namespace aetl
