#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/logging.h"
#include "commands/run_command.h"
#include "config/config_error.h"
#include "config/pipeline_spec.h"
#include "run/plan.h"
#include "run/schedule/schedule.h"

namespace aetl {

std::function<ExitCode()> setup_validate_command(CLI::App& app) {
  auto files = std::make_shared<std::vector<std::string>>();
  auto explain = std::make_shared<bool>(false);
  app.add_option("pipeline", *files, "Pipeline files (YAML)")->required();
  app.add_flag("--explain", *explain,
               "Also print the plan: which steps run in the source's lanes, which run as chains, where the sink's rows are made");
  return [files, explain]() -> ExitCode {
    ExitCode code = ExitCode::ok;
    for (const auto& file : *files) {
      try {
        PipelineSpec spec = load_pipeline(file, process_environment());
        std::string parts = spec.source.kind;
        for (const auto& s : spec.stages) parts += " → " + s.kind;
        if (spec.sinks.size() == 1) parts += " → " + spec.sinks[0].kind;
        else {
          parts += " → {";
          for (size_t i = 0; i < spec.sinks.size(); ++i)
            parts += (i ? ", " : "") + spec.sinks[i].name + ": " + spec.sinks[i].kind;
          parts += "}";
        }
        if (spec.dead_letter) parts += " (dead letters → " + spec.dead_letter->kind + ")";
        if (spec.schedule.given()) {
          Schedule schedule(spec.schedule);
          auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
          parts += "; " + schedule.describe() + ", next fire at " + schedule.format(schedule.next_after(now));
        }
        logging::print_line(file + ": ok: " + spec.name + ": " + parts);
        if (*explain)
          for (const auto& line : make_plan(spec).describe(spec)) std::printf("%s: %s\n", file.c_str(), line.c_str());
      } catch (const ConfigError& e) {
        print_config_problems(e);
        code = ExitCode::usage;
      }
    }
    return code;
  };
}

}  // namespace aetl
