#include "commands/replay_command.h"

#include <memory>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/logging.h"
#include "cli/run_progress.h"
#include "commands/run_command.h"
#include "commands/shared_http.h"
#include "config/config_error.h"
#include "config/pipeline_spec.h"
#include "engine/duration.h"
#include "engine/setup_error.h"
#include "run/replay.h"

namespace aetl {
namespace {

struct ReplayFlags {
  std::string dead_letter;
  std::string file;
  std::string state;
  bool wait = false;
  bool dry_run = false;
  std::string grace = "5s";
  bool quiet = false;
  bool no_progress = false;
};

}  // namespace

std::function<ExitCode()> setup_replay_command(CLI::App& app) {
  auto f = std::make_shared<ReplayFlags>();
  app.add_option("dead_letter", f->dead_letter, "The dead-letter file (JSON Lines, as a jsonl dead_letter writes it)")
      ->required();
  app.add_option("pipeline", f->file, "The pipeline file (YAML)")->required();
  app.add_option("--state", f->state, "The pipeline's state store (as aetl run --state): its lock and checkpoint");
  app.add_flag("--wait", f->wait, "If the pipeline is running, wait for it to end (default: exit 75)");
  app.add_flag("--dry-run", f->dry_run,
               "Records to stdout, new failures to stderr; the dead-letter file is left as it is");
  app.add_option("--grace", f->grace, "After SIGINT/SIGTERM, how long work in flight may finish (default 5s)");
  app.add_flag("-q,--quiet", f->quiet, "No progress line and no summary");
  app.add_flag("--no-progress", f->no_progress, "No progress line, even on a terminal");
  return [f]() -> ExitCode {
    auto loaded = load_pipeline_or_report(f->file);
    if (!loaded) return ExitCode::usage;
    PipelineSpec& spec = *loaded;
    ReplayOptions o;
    o.dead_letter_file = f->dead_letter;
    o.state_path = f->state;
    o.wait = f->wait;
    o.dry_run = f->dry_run;
    o.quiet = f->quiet;
    o.jsonl_sink = plain_jsonl_sink;
    auto grace = parse_duration(f->grace);
    if (!grace) throw SetupError("--grace: invalid duration '" + f->grace + "' (examples: 250ms, 10s, 2m)");
    o.run.grace = *grace;
    o.run.prepare = [](RunContext& run) { share_http_client(run, pipeline_http_options()); };
    RunProgress display(!f->quiet && !f->no_progress && logging::stderr_is_terminal(), !f->quiet);
    o.run.display = &display;
    ReplayOutcome r = replay_dead_letters(spec, o);
    if (!r.complete && !r.run.closed_early)
      spdlog::info("{}: {} entr{}; the replay {}: {} handled now, {} failed again, {} left as they were; {}",
                   f->dead_letter, r.entries, r.entries == 1 ? "y" : "ies",
                   r.run.interrupted   ? "was interrupted"
                   : r.run.taken_over ? "stopped (another run took over an exactly-once sink)"
                                      : "failed",
                   r.succeeded, r.failed_again, r.left,
                   r.rewritten ? "the file was rewritten" : "the file is unchanged");
    else if (r.complete && (!f->quiet || r.failed_again > 0))  // exit 1 says why, even with -q
      spdlog::info("{}: {} entr{}: {} replayed, {} handled now, {} failed again, {} not replayable; {}", f->dead_letter,
                   r.entries, r.entries == 1 ? "y" : "ies", r.replayed, r.succeeded, r.failed_again, r.kept,
                   r.rewritten  ? "the file was rewritten"
                   : f->dry_run ? "the file is unchanged (--dry-run)"
                                : "the file is unchanged");
    if (r.run.taken_over) return ExitCode::busy;
    ExitCode code = r.run.failed || r.failed_again > 0 ? ExitCode::failures : ExitCode::ok;
    if (r.run.interrupted) code = worst(code, ExitCode::interrupted);
    return code;
  };
}

}  // namespace aetl
