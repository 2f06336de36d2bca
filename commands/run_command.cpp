#include "commands/run_command.h"

#include <fstream>
#include <memory>
#include <optional>
#include <regex>

#include <CLI/CLI.hpp>

#include "engine/setup_error.h"
#include "cli/exit_codes.h"
#include "cli/logging.h"
#include "cli/run_progress.h"
#include "config/config_error.h"
#include "engine/duration.h"
#include "config/pipeline_spec.h"
#include "run/pipeline_runner.h"
#include "run/schedule/scheduler.h"
#include "run/state_store.h"
#include "commands/shared_http.h"

namespace aetl {
namespace {

struct RunFlags {
  std::string file;
  std::string state;
  bool from_start = false;
  bool wait = false;
  bool dry_run = false;
  uint64_t limit = 0;
  std::string grace = "5s";
  std::string deadline;
  std::string metrics_out;
  bool quiet = false;
  bool no_progress = false;
  std::string every;
  std::string cron;
  bool once = false;
};

}  // namespace

namespace {

/// Line `number` (1-based) of `file`, or nullopt if it cannot be read.
std::optional<std::string> source_line(const std::string& file, int number) {
  std::ifstream in(file, std::ios::binary);
  std::string line;
  for (int i = 1; std::getline(in, line); ++i)
    if (i == number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
  return std::nullopt;
}

/// `line` with passwords overwritten by '*' (the same length, so columns stay):
/// a URL's user:password@, and password=VALUE as in a libpq connection string.
std::string masked(std::string line) {
  static const std::regex secrets(R"(://[^/:@\s"']*:([^@/\s"']+)@|password\s*=\s*([^\s"',}]+))", std::regex::icase);
  for (auto it = std::sregex_iterator(line.begin(), line.end(), secrets); it != std::sregex_iterator(); ++it)
    for (size_t g : {1u, 2u})
      if ((*it)[g].matched) line.replace(static_cast<size_t>(it->position(g)), static_cast<size_t>(it->length(g)),
                                         static_cast<size_t>(it->length(g)), '*');
  return line;
}

}  // namespace

ScheduleSpec command_line_schedule(ScheduleSpec file, const std::string& every, const std::string& cron) {
  if (!every.empty() && !cron.empty()) throw SetupError("--every and --cron: give one of them");
  if (!every.empty()) {
    auto d = parse_duration(every);
    if (!d || d->count() < 1000 || d->count() % 1000 != 0)
      throw SetupError("--every: invalid duration '" + every + "' (whole seconds, at least 1s: 30s, 15m, 1h)");
    file.every = std::chrono::duration_cast<std::chrono::seconds>(*d);
    file.cron.clear();
    file.timezone.clear();
  }
  if (!cron.empty()) {
    file.cron = cron;
    file.every = std::chrono::seconds(0);
  }
  return file;
}

std::optional<Pipeline> load_pipeline_or_report(const std::string& file) {
  try {
    return load_pipeline(file, process_environment());
  } catch (const ConfigError& e) {
    print_config_problems(e);
    return std::nullopt;
  }
}

void print_config_problems(const ConfigError& e) {
  for (const auto& p : e.problems()) {
    logging::print_line(p.format());
    if (p.where.line <= 0 || p.where.column <= 0) continue;
    auto line = source_line(p.where.file, p.where.line);
    if (!line || static_cast<size_t>(p.where.column) > line->size() + 1) continue;
    std::string caret;  // tabs kept, so the caret stands under the column on any terminal
    for (size_t i = 0; i + 1 < static_cast<size_t>(p.where.column); ++i) caret += (*line)[i] == '\t' ? '\t' : ' ';
    logging::print_line(masked(*line));
    logging::print_line(caret + "^");
  }
}

std::function<ExitCode()> setup_run_command(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  app.add_option("pipeline", f->file, "The pipeline file (YAML)")->required();
  app.add_option("--state", f->state,
                 "State store for checkpoints (default: $XDG_STATE_HOME/aetl/NAME-HASH.sqlite)");
  app.add_flag("--wait", f->wait,
               "If another run of this pipeline holds the state store, wait for it to end (default: exit 75)");
  app.add_flag("--from-start", f->from_start, "Ignore the checkpoint: start from the beginning of the input");
  app.add_flag("--dry-run", f->dry_run,
               "Run, but write records to stdout and dead letters to stderr instead of the sinks; no checkpoint");
  app.add_option("--limit", f->limit, "Read at most N records from the source");
  app.add_option("--grace", f->grace, "After SIGINT/SIGTERM, how long work in flight may finish (default 5s)");
  app.add_option("--deadline", f->deadline, "Stop and abort the run after this long (e.g. 50m)");
  app.add_option("--metrics-out", f->metrics_out, "Write Prometheus text-format metrics to FILE at the end");
  app.add_option("--every", f->every,
                 "Run on a schedule: at the multiples of this since the Unix epoch, UTC (15m: :00, :15, ...), "
                 "staying up between runs; overrides the pipeline's schedule:");
  app.add_option("--cron", f->cron,
                 "Run on a schedule: at the times of this crontab(5) expression ('*/15 * * * *'); overrides the "
                 "pipeline's schedule:");
  app.add_flag("--once", f->once,
               "With a schedule: run the slot due now, unless another run (process, cron line, host) has, and exit "
               "(for cron lines and systemd timers)");
  app.add_flag("-q,--quiet", f->quiet, "No progress line and no summary");
  app.add_flag("--no-progress", f->no_progress, "No progress line, even on a terminal");
  return [f]() -> ExitCode {
    auto loaded = load_pipeline_or_report(f->file);
    if (!loaded) return ExitCode::usage;
    PipelineSpec& spec = *loaded;
    if (f->dry_run) {  // records to stdout (once for each sink they go to), dead letters to stderr, nothing kept
      for (auto& sink : spec.sinks) {
        Pipeline::SinkPart out = plain_jsonl_sink("-");
        out.name = sink.name;
        out.kind = sink.kind;  // the summary still names the sink it stands for
        sink = std::move(out);
      }
      spec.dead_letter = plain_jsonl_sink("/dev/stderr");
    }
    RunOptions o;
    o.prepare = [](RunContext& run) { share_http_client(run, pipeline_http_options()); };
    o.state_path = f->state;
    o.from_start = f->from_start;
    o.wait = f->wait;
    o.dry_run = f->dry_run;
    o.limit = f->limit;
    auto grace = parse_duration(f->grace);
    if (!grace) throw SetupError("--grace: invalid duration '" + f->grace + "' (examples: 250ms, 10s, 2m)");
    o.grace = *grace;
    if (!f->deadline.empty()) {
      auto d = parse_duration(f->deadline);
      if (!d || d->count() <= 0)
        throw SetupError("--deadline: invalid duration '" + f->deadline + "' (examples: 250ms, 10s, 2m)");
      o.deadline = *d;
    }
    o.metrics_out = f->metrics_out;
    RunProgress display(!f->quiet && !f->no_progress && logging::stderr_is_terminal(), !f->quiet);
    o.display = &display;
    auto exit_code = [](const RunOutcome& outcome) {
      if (outcome.taken_over) return ExitCode::busy;
      ExitCode code = outcome.failed ? ExitCode::failures : ExitCode::ok;
      if (outcome.interrupted) code = worst(code, ExitCode::interrupted);
      return code;
    };
    ScheduleSpec sched = command_line_schedule(spec.schedule, f->every, f->cron);
    if (f->dry_run && sched.given()) {
      if (f->once || !f->every.empty() || !f->cron.empty())
        throw SetupError("--dry-run runs the pipeline once, now: leave out --every, --cron and --once");
      sched = {};  // the file's schedule: one run now, to try the pipeline
    }
    if (f->once && !sched.given())
      throw SetupError("--once: the pipeline has no schedule: (give --every or --cron)");
    if (!sched.given()) return exit_code(run_pipeline_spec(spec, o));
    Schedule schedule = [&] {
      try {
        return Schedule(sched);
      } catch (const std::exception& e) {
        throw SetupError(std::string(f->cron.empty() ? "--every: " : "--cron: ") + e.what());
      }
    }();
    std::unique_ptr<SlotBook> book;
    try {
      book = sched.redis_url.empty()
                 ? local_slot_book(f->state.empty() ? default_state_path(spec.file) : f->state, spec.name)
                 : redis_slot_book(sched, spec.name);
    } catch (const std::exception& e) {
      throw SetupError(std::string("schedule: ") + e.what());
    }
    ScheduleOutcome outcome = run_schedule(spec, o, schedule, *book, f->once);
    if (!outcome.ran) return ExitCode::ok;
    if (f->once || outcome.last.interrupted) return exit_code(outcome.last);
    return ExitCode::ok;  // a scheduler stopped between fires; each fire's failures were logged
  };
}

}  // namespace aetl
