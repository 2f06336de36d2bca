#include "run/pipeline_runner.h"

#include <unistd.h>

#include <fstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "engine/setup_error.h"
#include "engine/blocking_pool.h"
#include "run/checkpoint.h"
#include "engine/fatal.h"
#include "net/http/http_client.h"
#include "config/pipeline_spec.h"
#include "run/dead_letters.h"
#include "run/metrics.h"
#include "run/run_display.h"
#include "run/sink_driver.h"
#include "run/step_chain.h"
#include "run/run_lock.h"
#include "engine/shutdown.h"
#include "run/state_store.h"
#include "engine/task_group.h"

namespace aetl {
namespace {

std::unique_ptr<PipelineSink> stdout_sink(RunContext& run, const char* path) {
  // --dry-run: records to stdout, dead letters to stderr, nothing kept
  ConfigValue node;
  node.type = ConfigValue::Type::mapping;
  ConfigValue k, v, k2, v2;
  k.type = v.type = k2.type = v2.type = ConfigValue::Type::scalar;
  k.scalar = "path";
  v.scalar = path;
  k2.scalar = "fsync";
  v2.scalar = "false";
  node.entries.emplace_back(k, v);
  node.entries.emplace_back(k2, v2);
  ConfigProblems problems(process_environment());
  SinkCommon common;
  for (const auto& kind : sink_kinds())
    if (kind.key == "jsonl") return kind.parse(node, problems, common)(run);
  return nullptr;
}

/// Saves checkpoints as sinks commit: at most one save at a time, at most one per
/// interval, and a last one at the end.
class CheckpointKeeper {
 public:
  CheckpointKeeper(RunContext& run, StateStore* store, std::string name, std::chrono::milliseconds interval,
                   PipelineSink* exactly_once_sink)
      : run_(run),
        store_(store),
        name_(std::move(name)),
        interval_(interval),
        exactly_once_sink_(exactly_once_sink),
        wake_(run.stage.io.get_executor()) {}

  void committed() { wake_.notify(); }
  /// Saves where the run starts (the sinks' lengths right after opening) before
  /// anything is written: an appended file then never gets a batch twice.
  asio::awaitable<void> save_start() {
    if (store_) co_await save();
  }
  void finish() {
    finished_ = true;
    wake_.notify();
  }

  asio::awaitable<void> run() {
    if (!store_) co_return;
    for (;;) {
      bool changed = run_.tracker.version() != saved_version_;
      auto due = last_save_ + interval_;
      if (changed && (finished_ || std::chrono::steady_clock::now() >= due)) {
        co_await save();
        continue;
      }
      if (finished_) break;
      co_await wake_.wait(changed ? due : std::chrono::steady_clock::time_point::max());
    }
    // The last checkpoint also goes to an exactly-once sink, where the next run reads
    // it: records handled after its last batch (filtered out, dead-lettered) count too.
    if (exactly_once_sink_ && !run_.stage.control.aborted()) {
      Checkpoint cp = run_.tracker.snapshot();
      cp.sink_lengths = run_.sink_lengths();
      try {
        co_await exactly_once_sink_->store_checkpoint(cp.to_json());
      } catch (...) {
        failed_ = true;
        throw;
      }
    }
  }

  bool failed() const { return failed_; }
  uint64_t saves() const { return saves_; }

 private:
  asio::awaitable<void> save() {
    uint64_t version = run_.tracker.version();
    Checkpoint cp = run_.tracker.snapshot();
    cp.sink_lengths = run_.sink_lengths();
    last_save_ = std::chrono::steady_clock::now();
    try {
      co_await store_->save(run_.stage.pool, name_, cp.to_json());
      saved_version_ = version;
      ++saves_;
    } catch (const std::exception& e) {
      if (!failed_) spdlog::error("{}", e.what());
      failed_ = true;
      saved_version_ = version;  // do not spin on a broken store
    }
  }

  RunContext& run_;
  StateStore* store_;
  std::string name_;
  std::chrono::milliseconds interval_;
  PipelineSink* exactly_once_sink_;
  Wakeup wake_;
  std::chrono::steady_clock::time_point last_save_{};
  uint64_t saved_version_ = 0;
  bool finished_ = false;
  bool failed_ = false;
  uint64_t saves_ = 0;
};

/// The closing report: a line per part, then time, dead letters and where the checkpoint is.
std::vector<std::string> summary_lines(const RunContext& run, double seconds, const DeadLetters& dead,
                                       const std::string& state_path, bool checkpoint_failed) {
  std::vector<std::string> lines;
  lines.push_back(fmt::format("{:<14} {:>12} {:>12} {:>10} {:>10} {:>8}", "part", "in", "out", "dropped", "failed", "busy"));
  for (const auto& p : run.parts)
    lines.push_back(fmt::format("{:<14} {:>12} {:>12} {:>10} {:>10} {:>7.1f}s", p->name, p->in, p->out, p->dropped,
                                p->failed, p->busy_seconds));
  std::string tail = fmt::format("{:.2f}s", seconds);
  if (dead.count()) tail += fmt::format(", {} record{} {}", dead.count(), dead.count() == 1 ? "" : "s",
                                       dead.has_sink() ? "sent to the dead letter" : "failed (no dead_letter sink)");
  if (!state_path.empty())
    tail += (checkpoint_failed ? ", the checkpoint could not be saved in " : ", checkpoint in ") + state_path;
  lines.push_back(tail);
  return lines;
}

}  // namespace

RunOutcome run_pipeline_spec(const PipelineSpec& spec, const RunOptions& options) {
  asio::io_context io;
  BlockingPool pool(step_lanes() + 2);  // the lanes, a sink write, a checkpoint save
  RunControl control(io.get_executor());
  StageContext ctx{io, pool, control, {}};
  AckTracker tracker;
  DeadLetters dead(ctx, tracker, nullptr);
  RunContext run{ctx, tracker, dead};
  run.pipeline_name = spec.name;
  run.limit = options.limit;
  run.dry_run = options.dry_run;

  std::unique_ptr<HttpClient> http;
  run.http = [&]() -> HttpClient& {
    if (!http) {
      HttpClientOptions o;
      o.user_agent = std::string("aetl/") + AETL_VERSION;
      o.max_bytes = 64 << 20;  // responses are held in memory to land in a field
      o.connection_cache = 256;
      http = std::make_unique<HttpClient>(io, o);
      control.on_abort([&] { http->abort_all(); });
    }
    return *http;
  };

  // One run at a time per state store, from before anything is opened to the end.
  std::string state_path;
  std::unique_ptr<RunLock> lock;
  if (!options.dry_run) {
    state_path = options.state_path.empty() ? default_state_path(spec.file) : options.state_path;
    auto busy = [&](long pid) {
      return fmt::format("pipeline '{}' is already running ({} holds {}); --wait waits for it", spec.name,
                         pid ? "pid " + std::to_string(pid) : std::string("another process"), state_path + ".lock");
    };
    auto waiting = [&](long pid) {
      spdlog::info("waiting for {} to finish pipeline '{}'", pid ? "pid " + std::to_string(pid) : "another run",
                   spec.name);
    };
    lock = std::make_unique<RunLock>(state_path, options.wait, busy, waiting);
  }

  // Sinks first: an exactly-once sink holds the checkpoint.
  PartStats& sink_stats = run.add_part("sink " + spec.sink.kind);
  auto main_sink = options.dry_run ? stdout_sink(run, "-") : spec.sink.build(run);
  std::unique_ptr<SinkDriver> dl_driver;
  std::unique_ptr<PipelineSink> dl_sink;
  if (options.dry_run) dl_sink = stdout_sink(run, "/dev/stderr");
  else if (spec.dead_letter) dl_sink = spec.dead_letter->build(run);

  // Where the run starts.
  std::unique_ptr<StateStore> store;
  std::optional<Checkpoint> resume;
  if (!options.dry_run) {
    try {
      store = std::make_unique<StateStore>(state_path);
    } catch (const std::exception& e) {
      throw SetupError(e.what());
    }
    std::optional<std::string> saved;
    // An exactly-once sink's checkpoint is read even from the start: its commits
    // compare against what was read.
    if (main_sink->exactly_once()) saved = main_sink->stored_checkpoint();
    else if (!options.from_start) saved = store->load(spec.name);
    if (options.from_start) {
      store->clear(spec.name);
      saved.reset();
    }
    if (saved) {
      try {
        resume = Checkpoint::from_json(*saved);
      } catch (const std::exception& e) {
        throw SetupError(state_path + ": " + e.what() + " (run with --from-start to begin again)");
      }
    }
  }
  run.resume = resume ? &*resume : nullptr;

  auto source = spec.source.build(run);
  std::vector<std::unique_ptr<Stage>> stages;
  for (const auto& s : spec.stages) {
    auto stage = s.build(run, run.add_part(s.label));
    // Neighbouring record steps (filter, select, set) run as one chain.
    auto* chain = dynamic_cast<StepChainStage*>(stage.get());
    auto* before = stages.empty() ? nullptr : dynamic_cast<StepChainStage*>(stages.back().get());
    if (chain && before) before->chain().append(chain->chain());
    else stages.push_back(std::move(stage));
  }
  // The sink's row step ends the chain in front of it (or is the source's only step).
  if (auto row = main_sink->row_step()) {
    ChainedStep step{std::move(row), &sink_stats, true};
    if (stages.empty()) source->adopt_steps(StepChain({step}));
    else if (auto* last = dynamic_cast<StepChainStage*>(stages.back().get())) last->chain().append(step);
  }
  // The chain right behind the source runs inside the source's own jobs if it can.
  if (!stages.empty())
    if (auto* chain = dynamic_cast<StepChainStage*>(stages.front().get()); chain && source->adopt_steps(chain->chain()))
      stages.erase(stages.begin());
  std::vector<Stage*> stage_ptrs;
  for (auto& s : stages) stage_ptrs.push_back(s.get());
  // the sink's stats line goes last in the summary
  std::rotate(run.parts.begin(), run.parts.begin() + 1, run.parts.end());
  SinkDriver driver(run, std::move(main_sink), "sink", spec.sink.common.batching, spec.sink.common.retry, sink_stats);
  if (dl_sink) {
    PartStats& dl_stats = run.add_part("dead_letter");
    SinkBatching b = spec.dead_letter ? spec.dead_letter->common.batching : SinkBatching{};
    RetryPolicy r = spec.dead_letter ? spec.dead_letter->common.retry : RetryPolicy{};
    dl_driver = std::make_unique<SinkDriver>(run, std::move(dl_sink), "dead_letter", b, r, dl_stats);
    dead.set_sink(dl_driver.get());
  }
  run.sink_lengths = [&]() {
    std::map<std::string, uint64_t> lengths;
    if (auto n = driver.sink().durable_length()) lengths["sink"] = *n;
    if (dl_driver)
      if (auto n = dl_driver->sink().durable_length()) lengths["dead_letter"] = *n;
    return lengths;
  };
  CheckpointKeeper keeper(run, store.get(), spec.name, spec.checkpoint_interval,
                         driver.sink().exactly_once() ? &driver.sink() : nullptr);
  driver.on_commit = [&] { keeper.committed(); };
  if (dl_driver) dl_driver->on_commit = [&] { keeper.committed(); };

  control.watch_signals(options.grace);
  if (options.deadline.count() > 0) control.set_deadline(options.deadline);
  if (options.display) options.display->started(io, run);

  auto started = std::chrono::steady_clock::now();
  std::exception_ptr error;
  Drain drain = [&driver](BatchChannel& in) -> asio::awaitable<void> {
    for (;;) {
      Batch b = co_await receive_batch(in);
      if (b.empty()) break;
      co_await driver.push(std::move(b));
    }
    driver.finish();
  };
  auto main = [&]() -> asio::awaitable<void> {
    // Ends in order: the chain, then the main sink (which may still reject rows to
    // the dead letter), then the dead letters, then the last checkpoint.
    auto guard = [&](asio::awaitable<void> part) -> asio::awaitable<void> {
      try {
        co_await std::move(part);
      } catch (...) {
        if (!error) error = std::current_exception();
        control.request_abort();
        driver.finish();
        dead.finish();
        if (dl_driver) dl_driver->finish();
      }
    };
    auto open_sinks = [&]() -> asio::awaitable<void> {
      co_await driver.open();
      if (dl_driver) co_await dl_driver->open();
      co_await keeper.save_start();
    };
    co_await guard(open_sinks());
    if (error) {
      if (options.display) options.display->stopped();
      control.finish();
      co_return;
    }
    TaskGroup keeping(io.get_executor());
    TaskGroup sink_part(io.get_executor());
    TaskGroup dl_parts(io.get_executor());
    keeping.spawn(guard(keeper.run()));
    sink_part.spawn(guard(driver.run()));
    dl_parts.spawn(guard(dead.run()));
    if (dl_driver) dl_parts.spawn(guard(dl_driver->run()));
    co_await guard(run_chain(ctx, *source, stage_ptrs, drain, spec.channel_capacity));
    co_await sink_part.wait_all();
    dead.finish();
    co_await dl_parts.wait_all();
    keeper.finish();
    co_await keeping.wait_all();
    if (options.display) options.display->stopped();
    control.finish();
  };
  asio::co_spawn(io, main(), fatal_on_exception{});
  try {
    io.run();
  } catch (...) {
    end_on_exception(std::current_exception());
  }
  pool.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  if (!options.metrics_out.empty()) write_metrics(options.metrics_out, run, spec.name, seconds, error == nullptr);
  // An exactly-once sink holds the checkpoint the next run reads.
  std::string checkpoint_where = driver.sink().exactly_once() ? driver.sink().describe() : state_path;
  if (options.display) options.display->finished(summary_lines(run, seconds, dead, checkpoint_where, keeper.failed()));

  RunOutcome outcome;
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const SetupError&) {
      throw;
    } catch (const CheckpointTakenOver& e) {
      spdlog::error("{}", e.what());
      outcome.taken_over = true;
      return outcome;
    } catch (const std::bad_alloc&) {
      spdlog::error("out of memory; stopped (what was committed is kept)");
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
    }
    outcome.failed = true;
  }
  if (tracker.failed() > 0 || keeper.failed()) outcome.failed = true;
  if (control.reason() == StopReason::deadline) outcome.failed = true;
  if (control.reason() == StopReason::signal) outcome.interrupted = true;
  return outcome;
}

}  // namespace aetl
