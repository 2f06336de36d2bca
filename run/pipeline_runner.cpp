#include "run/pipeline_runner.h"

#include <unistd.h>

#include <fstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "engine/setup_error.h"
#include "engine/allocator.h"
#include "engine/blocking_pool.h"
#include "run/checkpoint.h"
#include "run/checkpoint_keeper.h"
#include "engine/fatal.h"
#include "run/plan.h"
#include "run/dead_letters.h"
#include "run/fan_out.h"
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

/// Once a second while the run goes on, the heaps' free pages go back to the
/// kernel (on the pool), so peak RSS does not creep with the input's size.
class MemoryReleaser {
 public:
  explicit MemoryReleaser(RunContext& run) : run_(run), timer_(run.stage.io) {}
  asio::awaitable<void> run() {
    while (!done_) {
      timer_.expires_after(std::chrono::seconds(1));
      asio::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (done_) break;
      auto trim = [] {
        release_free_memory();
        return 0;
      };
      co_await run_blocking(run_.stage.pool.pool(), trim);
    }
  }
  void stop() {
    done_ = true;
    timer_.cancel();
  }

 private:
  RunContext& run_;
  asio::steady_timer timer_;
  bool done_ = false;
};

/// --metrics-out while the run lasts: the counters so far, every 10 s (a worker
/// or a long run is watched as it goes; the file is written again at the end).
class LiveMetrics {
 public:
  LiveMetrics(RunContext& run, const std::string& path, const std::string& pipeline,
              std::chrono::steady_clock::time_point started)
      : run_(run), path_(path), pipeline_(pipeline), started_(started), timer_(run.stage.io) {}
  asio::awaitable<void> run() {
    while (!done_ && !path_.empty()) {
      timer_.expires_after(std::chrono::seconds(10));
      asio::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (done_) break;
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      write_metrics(path_, run_, pipeline_, seconds, !run_.stage.control.aborted());
    }
  }
  void stop() {
    done_ = true;
    timer_.cancel();
  }

 private:
  RunContext& run_;
  const std::string& path_;
  const std::string& pipeline_;
  std::chrono::steady_clock::time_point started_;
  asio::steady_timer timer_;
  bool done_ = false;
};

}  // namespace

RunOutcome run_pipeline_spec(const Pipeline& spec, const RunOptions& options) {
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
  run.append_files = options.append_files;
  run.queue_source = spec.source.queue;
  // A queue source's position is the queue's own (its unacknowledged entries).
  const bool keeps_state = !options.dry_run && !options.stateless && !spec.source.queue;

  if (options.prepare) options.prepare(run);
  // `ended` once the loop will run no more, also when the setup throws (and
  // before the loop is destroyed: a scheduler's lock thread posts to it until then).
  struct Ended {
    const std::function<void()>& call;
    bool done = false;
    void now() {
      if (!done && call) call();
      done = true;
    }
    ~Ended() { now(); }
  } ended{options.ended};

  // One run at a time per state store, from before anything is opened to the end.
  std::string state_path;
  std::unique_ptr<RunLock> lock;
  if (keeps_state) {
    state_path = options.state_path.empty() ? default_state_path(spec.file) : options.state_path;
    if (!options.holds_lock) lock = RunLock::for_pipeline(state_path, spec.name, options.wait, "already running");
  }

  // Sinks first: an exactly-once sink holds the checkpoint.
  const size_t n_sinks = spec.sinks.size();
  const bool several = n_sinks > 1;
  std::vector<PartStats*> sink_stats;
  std::vector<std::unique_ptr<PipelineSink>> built_sinks;
  for (const auto& part : spec.sinks) {
    run.sink_names.push_back(part.name);
    sink_stats.push_back(&run.add_part("sink " + (several ? part.name : part.kind)));
    SinkIdentity id{part.name, part.name == "sink" ? spec.name : spec.name + "/" + part.name};
    built_sinks.push_back(part.build(run, id));
  }
  std::unique_ptr<SinkDriver> dl_driver;
  std::unique_ptr<PipelineSink> dl_sink;
  if (spec.dead_letter) dl_sink = spec.dead_letter->build(run, SinkIdentity{"dead_letter", spec.name});

  // Where the run starts: a one-sink pipeline's exactly-once sink holds it; with
  // several sinks, the state store, and each exactly-once sink skips on a replay
  // what it committed before (its own checkpoint).
  std::unique_ptr<StateStore> store;
  std::optional<Checkpoint> resume;
  std::vector<std::optional<Checkpoint>> committed_before(n_sinks);
  if (keeps_state) {
    store = open_state_store(state_path);
    resume = load_checkpoint(*store, several ? nullptr : built_sinks[0].get(), spec.name, options.from_start);
    if (several)
      for (size_t i = 0; i < n_sinks; ++i) {
        if (!built_sinks[i]->exactly_once()) continue;
        auto stored = built_sinks[i]->stored_checkpoint();  // read also with --from-start (its compare-and-set)
        if (!stored || options.from_start) continue;
        try {
          committed_before[i] = Checkpoint::from_json(*stored);
        } catch (const std::exception& e) {
          throw SetupError(built_sinks[i]->describe() + ": " + e.what() + " (run with --from-start to begin again)");
        }
      }
  }
  // A file sink (several sinks) holds records beyond the checkpoint's position,
  // which it wrote ahead of the slower sinks: skipped for it on a replay.
  uint32_t file_mask = 0;
  for (size_t i = 0; several && i < n_sinks; ++i) {
    const std::string& f = spec.sinks[i].common.file;
    if (f.empty() || f == "-" || built_sinks[i]->exactly_once()) continue;
    file_mask |= 1u << i;
    if (!resume) continue;
    if (auto it = resume->sink_marks.find(spec.sinks[i].name); it != resume->sink_marks.end()) {
      committed_before[i].emplace();
      committed_before[i]->inputs = it->second;
    }
  }
  run.resume = resume ? &*resume : nullptr;
  std::optional<Checkpoint> files_only;
  if (!run.resume && !options.file_lengths.empty()) {
    files_only.emplace();
    files_only->sink_lengths = options.file_lengths;
    run.resume = &*files_only;
  }
  run.checkpoints.gated = store != nullptr;

  // Built in pipeline order (so the parts' lines keep it), then put together as the plan says.
  Plan plan = make_plan(spec);
  auto source = spec.source.build(run);
  std::vector<std::unique_ptr<Stage>> built;
  for (const auto& s : spec.stages) built.push_back(s.build(run, run.add_part(s.label)));
  auto steps_of = [&](size_t k) -> StepChain& {
    StepChain* chain = built[k]->step_chain();
    if (!chain) throw std::logic_error(spec.stages[k].label + " is declared a record step but has no steps");
    return *chain;
  };
  StepChain in_source;
  for (size_t k : plan.in_source) in_source.append(steps_of(k));
  std::vector<std::unique_ptr<Stage>> stages;
  for (const auto& u : plan.units) {
    if (u.chain)
      for (size_t k = u.first + 1; k <= u.last; ++k) steps_of(u.first).append(steps_of(k));
    stages.push_back(std::move(built[u.first]));
  }
  if (plan.row_step != Plan::RowStep::at_sink)
    if (auto row = built_sinks[0]->row_step()) {
      ChainedStep step{std::move(row), sink_stats[0], true};
      if (plan.row_step == Plan::RowStep::in_source) in_source.append(step);
      else stages.back()->step_chain()->append(step);
    }
  if (!in_source.empty() && !source->adopt_steps(in_source))
    throw std::logic_error("source " + spec.source.kind + " is declared to run steps but refused them");
  std::vector<Stage*> stage_ptrs;
  for (auto& s : stages) stage_ptrs.push_back(s.get());
  // the sinks' stats lines go last in the summary
  std::rotate(run.parts.begin(), run.parts.begin() + static_cast<std::ptrdiff_t>(n_sinks), run.parts.end());
  std::vector<std::unique_ptr<SinkDriver>> drivers;
  uint32_t exactly_once_mask = 0;
  for (size_t i = 0; i < n_sinks; ++i) {
    if (built_sinks[i]->exactly_once()) exactly_once_mask |= 1u << i;
    drivers.push_back(std::make_unique<SinkDriver>(run, std::move(built_sinks[i]), spec.sinks[i].name,
                                                   spec.sinks[i].common.batching, spec.sinks[i].common.retry,
                                                   *sink_stats[i]));
  }
  FanOut fan_out(tracker, exactly_once_mask, file_mask);
  if (dl_sink) {
    PartStats& dl_stats = run.add_part("dead_letter");
    SinkBatching b = spec.dead_letter ? spec.dead_letter->common.batching : SinkBatching{};
    RetryPolicy r = spec.dead_letter ? spec.dead_letter->common.retry : RetryPolicy{};
    dl_driver = std::make_unique<SinkDriver>(run, std::move(dl_sink), "dead_letter", b, r, dl_stats);
    dead.set_sink(dl_driver.get());
    if (several) dl_driver->ack = [&fan_out](const Record& r) { fan_out.handled(r, FanOut::kNoSink); };
  }
  run.sink_lengths = [&]() {
    std::map<std::string, uint64_t> lengths;
    for (const auto& d : drivers)
      if (auto n = d->sink().durable_length()) lengths[d->key()] = *n;
    if (dl_driver)
      if (auto n = dl_driver->sink().durable_length()) {
        lengths["dead_letter"] = *n;
        if (auto id = dl_driver->sink().file_id()) lengths[std::string(kDeadLetterFileId)] = *id;
      }
    return lengths;
  };
  if (file_mask)
    run.sink_marks = [&]() {
      std::map<std::string, std::vector<InputMark>> marks;
      for (size_t i = 0; i < n_sinks; ++i) {
        if (!(file_mask & (1u << i)) || !drivers[i]->sink().durable_length()) continue;
        AckTracker t = tracker;
        fan_out.add_handled_for(i, t);
        if (committed_before[i])
          for (const auto& m : committed_before[i]->inputs) t.absorb(m);
        marks[drivers[i]->key()] = t.snapshot().inputs;
      }
      return marks;
    };
  SinkDriver& first = *drivers[0];
  CheckpointKeeper keeper(run, store.get(), spec.name, spec.checkpoint_interval,
                         !several && first.sink().exactly_once() ? &first.sink() : nullptr);
  keeper.fence = options.fence;
  for (size_t i = 0; i < n_sinks; ++i) {
    SinkDriver& d = *drivers[i];
    d.on_commit = [&] { keeper.committed(); };
    if (!d.sink().exactly_once()) continue;
    d.before_commit = options.fence;
    if (!several) {
      d.holds_checkpoint = true;
      continue;
    }
    // What it committed before stays in its checkpoint until this run passes it
    // (a run killed early would otherwise forget it, and the next write it again).
    d.own_checkpoint = [&fan_out, &committed_before, i](AckTracker& t) {
      fan_out.add_handled_for(i, t);
      if (committed_before[i])
        for (const auto& m : committed_before[i]->inputs) t.absorb(m);
    };
    if (store) keeper.also_store_in(&d.sink(), d.own_checkpoint);
  }
  if (several)
    for (size_t i = 0; i < n_sinks; ++i) drivers[i]->ack = [&fan_out, i](const Record& r) { fan_out.handled(r, i); };
  if (dl_driver) dl_driver->on_commit = [&] { keeper.committed(); };
  auto finish_sinks = [&] {
    for (auto& d : drivers) d->finish();
  };

  control.watch_signals(options.grace);
  if (options.deadline.count() > 0) control.set_deadline(options.deadline);
  if (options.display) options.display->started(io, run);

  auto started = std::chrono::steady_clock::now();
  std::exception_ptr error;
  // Records go to every sink, or to those their route names; a replayed record
  // skips an exactly-once sink that committed it before.
  const uint32_t every_sink = n_sinks >= 32 ? ~0u : (1u << n_sinks) - 1;
  auto committed_by = [&](size_t i, const Position& pos) {
    if (!committed_before[i] || pos.source >= ctx.input_names.size()) return false;
    const InputMark* m = committed_before[i]->find(ctx.input_names[pos.source]);
    return m && (pos.line <= m->line || m->is_done(pos.line));
  };
  Drain drain = [&](BatchChannel& in) -> asio::awaitable<void> {
    std::vector<Batch> to_sink(n_sinks);
    for (;;) {
      Batch b = co_await receive_batch(in);
      if (b.empty()) break;
      if (!several) {
        co_await first.push(std::move(b));
        continue;
      }
      for (auto& r : b) {
        uint32_t to = r.routes ? (r.routes & every_sink) : every_sink;
        for (size_t i = 0; i < n_sinks; ++i)
          if ((to & (1u << i)) && committed_by(i, r.pos)) {
            to &= ~(1u << i);
            ++sink_stats[i]->in;
            ++sink_stats[i]->dropped;
            ++sink_stats[i]->events["redelivered"];
          }
        fan_out.send(r, to);
        for (size_t i = 0; to; ++i) {
          if (!(to & (1u << i))) continue;
          to &= ~(1u << i);
          if (to) to_sink[i].push_back(r);  // a copy for each sink but the last
          else to_sink[i].push_back(std::move(r));
        }
      }
      for (size_t i = 0; i < n_sinks; ++i)
        if (!to_sink[i].empty()) co_await drivers[i]->push(std::exchange(to_sink[i], Batch{}));
    }
    finish_sinks();
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
        finish_sinks();
        dead.finish();
        if (dl_driver) dl_driver->finish();
      }
    };
    auto open_sinks = [&]() -> asio::awaitable<void> {
      for (auto& d : drivers) co_await d->open();
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
    MemoryReleaser releaser(run);
    LiveMetrics live_metrics(run, options.metrics_out, spec.name, started);
    TaskGroup releasing(io.get_executor());
    releasing.spawn(releaser.run());
    releasing.spawn(live_metrics.run());
    for (auto& d : drivers) sink_part.spawn(guard(d->run()));
    dl_parts.spawn(guard(dead.run()));
    if (dl_driver) dl_parts.spawn(guard(dl_driver->run()));
    co_await guard(run_chain(ctx, *source, stage_ptrs, drain, spec.channel_capacity));
    co_await sink_part.wait_all();
    dead.finish();
    co_await dl_parts.wait_all();
    keeper.finish();
    co_await keeping.wait_all();
    releaser.stop();
    live_metrics.stop();
    co_await releasing.wait_all();
    if (options.display) options.display->stopped();
    control.finish();
  };
  // Once the run is over the loop ends too, even with idle connections still
  // watched in the HTTP client's cache.
  asio::co_spawn(io, main(), [&io](std::exception_ptr e) {
    if (e) end_on_exception(e);
    io.stop();
  });
  try {
    io.run();
  } catch (...) {
    end_on_exception(std::current_exception());
  }
  ended.now();
  pool.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  if (!options.metrics_out.empty()) write_metrics(options.metrics_out, run, spec.name, seconds, error == nullptr);
  // An exactly-once sink holds the checkpoint the next run reads.
  std::string checkpoint_where =
      !several && first.sink().exactly_once() && keeps_state ? first.sink().describe() : state_path;
  const bool closed_early = control.reason() == StopReason::downstream_closed;
  if (options.display) {
    std::vector<std::string> summary;
    bool setup_failed = false;
    try {
      if (error) std::rethrow_exception(error);
    } catch (const SetupError&) {
      setup_failed = true;
    } catch (...) {
    }
    if (closed_early || setup_failed) summary.clear();  // a closed pipe ends the run quietly; a setup error never started it
    else if (options.summary && error) summary.clear();  // the error is the last word, not a count of successes
    else if (options.summary) summary = options.summary(seconds);
    else summary = summary_lines(run, seconds, dead, options.state_in_summary ? checkpoint_where : std::string(), keeper.failed());
    options.display->finished(summary);
  }

  RunOutcome outcome;
  outcome.closed_early = closed_early;
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
  outcome.failed_records = tracker.failed();
  if (tracker.failed() > 0 || keeper.failed()) outcome.failed = true;
  if (control.reason() == StopReason::deadline) outcome.failed = true;
  if (control.reason() == StopReason::signal) outcome.interrupted = true;
  return outcome;
}

namespace {

/// What saved_checkpoint and amend_checkpoint need: a loop, and the main sink
/// when it is exactly-once (it holds the checkpoint).
struct CheckpointAccess {
  asio::io_context io;
  BlockingPool pool{1};
  RunControl control{io.get_executor()};
  StageContext ctx{io, pool, control, {}};
  AckTracker tracker;
  DeadLetters dead{ctx, tracker, nullptr};
  RunContext run{ctx, tracker, dead};
  std::unique_ptr<PipelineSink> main;
  std::unique_ptr<StateStore> store;

  CheckpointAccess(const Pipeline& spec, const RunOptions& options, const std::string& state_path) {
    run.pipeline_name = spec.name;
    if (options.prepare) options.prepare(run);
    if (spec.sinks.size() == 1 && spec.sinks[0].common.exactly_once)
      main = spec.sinks[0].build(run, SinkIdentity{spec.sinks[0].name, spec.name});
    store = open_state_store(state_path);
  }
};

}  // namespace

std::optional<Checkpoint> saved_checkpoint(const Pipeline& spec, const RunOptions& options,
                                           const std::string& state_path) {
  CheckpointAccess access(spec, options, state_path);
  return load_checkpoint(*access.store, access.main.get(), spec.name, false);
}

void amend_checkpoint(const Pipeline& spec, const RunOptions& options, const std::string& state_path,
                      const std::function<void(Checkpoint&)>& change) {
  CheckpointAccess access(spec, options, state_path);
  auto cp = load_checkpoint(*access.store, access.main.get(), spec.name, false);
  if (!cp) return;
  change(*cp);
  std::string json = cp->to_json();
  std::exception_ptr failed;
  auto store = [&]() -> asio::awaitable<void> {
    if (access.main) {
      co_await access.main->open(nullptr, spec.sinks[0].name);
      co_await access.main->store_checkpoint(json);
      co_await access.main->close();
    } else {
      co_await access.store->save(access.pool, spec.name, json);
    }
  };
  asio::co_spawn(access.io, store(), [&](std::exception_ptr e) { failed = e; });
  access.io.run();
  if (!failed) return;
  try {
    std::rethrow_exception(failed);
  } catch (const SetupError&) {
    throw;
  } catch (const CheckpointTakenOver&) {
    throw;
  } catch (const std::exception& e) {
    throw SetupError(state_path + ": the checkpoint cannot be saved: " + e.what());
  }
}

}  // namespace aetl
