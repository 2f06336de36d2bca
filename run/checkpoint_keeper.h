#pragma once
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "engine/asio.h"
#include "engine/shutdown.h"
#include "engine/wakeup.h"
#include "run/checkpoint.h"
#include "run/pipeline_sink.h"
#include "run/run_context.h"
#include "run/state_store.h"

// The checkpoint of a run, in one place: where a run starts (load_checkpoint) and
// what it saves as it goes (CheckpointKeeper). What a checkpoint holds and how
// sources and sinks acknowledge positions: run/checkpoint.h.
namespace aetl {

/// Opens the state store at `path` (a SetupError if it cannot be opened).
std::unique_ptr<StateStore> open_state_store(const std::string& path);

/// Where a run starts: the exactly-once sink's checkpoint if `main_sink` (nullptr with several sinks) is one
/// (read even with `from_start`, since its commits compare against it), else the
/// state store's; `from_start` clears the store's. A checkpoint that cannot be
/// read is a SetupError naming the store.
std::optional<Checkpoint> load_checkpoint(StateStore& store, PipelineSink* main_sink, const std::string& name,
                                          bool from_start);

/// Saves a run's checkpoint as its sinks commit: at most one save at a time, at
/// most one per interval, a last one at the end; with an exactly-once sink, the
/// last one also goes to that sink (where the next run reads it).
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
      // Woken by commits, and once an interval without them: records a filter
      // dropped move the checkpoint on too (and release what waits for it).
      auto idle = std::max<std::chrono::milliseconds>(interval_, std::chrono::milliseconds(100));
      co_await wake_.wait(changed ? due : std::chrono::steady_clock::now() + idle);
    }
    // The last checkpoint also goes to an exactly-once sink, where the next run reads
    // it: records handled after its last batch (filtered out, dead-lettered) count too.
    if (!run_.stage.control.aborted())
      for (const auto& [sink, add] : other_sinks_) {  // several sinks: each exactly-once one its own
        AckTracker t = run_.tracker;
        add(t);
        Checkpoint cp = t.snapshot();
        cp.sink_lengths = run_.sink_lengths();
        if (run_.sink_marks) cp.sink_marks = run_.sink_marks();
        try {
          if (fence) co_await fence();
          co_await sink->store_checkpoint(cp.to_json());
        } catch (...) {
          failed_ = true;
          throw;
        }
      }
    if (exactly_once_sink_ && !run_.stage.control.aborted()) {
      run_.checkpoints.taken();
      Checkpoint cp = run_.tracker.snapshot();
      cp.sink_lengths = run_.sink_lengths();
      if (run_.sink_marks) cp.sink_marks = run_.sink_marks();
      try {
        if (fence) co_await fence();
        co_await exactly_once_sink_->store_checkpoint(cp.to_json());
        run_.checkpoints.saved();
      } catch (...) {
        failed_ = true;
        throw;
      }
    }
  }

  /// Several sinks: an exactly-once one that keeps its own checkpoint (not the one
  /// the next run starts from), the tracker's with what `add` acks in a copy of it
  /// (FanOut::add_handled_for); it gets its last one at the end too.
  void also_store_in(PipelineSink* sink, std::function<void(AckTracker&)> add) {
    other_sinks_.emplace_back(sink, std::move(add));
  }
  /// Awaited before the last checkpoint goes to the exactly-once sink (RunOptions::fence).
  std::function<asio::awaitable<void>()> fence;

  bool failed() const { return failed_; }
  uint64_t saves() const { return saves_; }

 private:
  asio::awaitable<void> save() {
    uint64_t version = run_.tracker.version();
    Checkpoint cp = run_.tracker.snapshot();
    cp.sink_lengths = run_.sink_lengths();
    if (run_.sink_marks) cp.sink_marks = run_.sink_marks();
    last_save_ = std::chrono::steady_clock::now();
    // With an exactly-once sink the next run reads the sink's checkpoint, not this one.
    if (!exactly_once_sink_) run_.checkpoints.taken();
    try {
      co_await store_->save(run_.stage.pool, name_, cp.to_json());
      saved_version_ = version;
      ++saves_;
      if (!exactly_once_sink_) run_.checkpoints.saved();
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
  std::vector<std::pair<PipelineSink*, std::function<void(AckTracker&)>>> other_sinks_;
  Wakeup wake_;
  std::chrono::steady_clock::time_point last_save_{};
  uint64_t saved_version_ = 0;
  bool finished_ = false;
  bool failed_ = false;
  uint64_t saves_ = 0;
};

}  // namespace aetl
