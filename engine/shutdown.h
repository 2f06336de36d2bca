#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"

namespace aetl {

/// Why a run is ending early.
enum class StopReason { none, signal, deadline, downstream_closed, error };

/// The run's stop and abort state: one per run, passed to every stage.
///  - stop: sources stop reading; work already taken in finishes and is written.
///  - abort: work in flight is cancelled now; nothing unfinished is written.
/// The first SIGINT/SIGTERM stops and starts the grace period, after which the run
/// aborts; a second signal aborts at once. A deadline stops and aborts together.
/// Whatever is stuck, a signal always ends the process: if it is still running
/// kHardStopMargin after the grace period (or after a second signal), a real-time
/// timer (SIGALRM, not the loop) prints one line and exits with 130. Nothing
/// committed is lost by that: checkpoints only ever cover what sinks committed.
inline constexpr std::chrono::milliseconds kHardStopMargin{3000};
/// Likewise after an abort for any other reason (an error, the deadline): the
/// process ends within this long, with exit status 1, even if something it waits
/// for never comes. Long enough for a database write in progress to finish.
inline constexpr std::chrono::milliseconds kAbortedStopLimit{15000};
class RunControl {
 public:
  explicit RunControl(asio::any_io_executor ex);
  ~RunControl();

  void request_stop(StopReason reason);
  void request_abort();

  /// Readable from any thread (sources poll it while reading on the blocking pool).
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  bool aborted() const { return aborted_.load(std::memory_order_relaxed); }
  StopReason reason() const { return reason_; }

  /// Called (on the loop) once, when the run aborts.
  void on_abort(std::function<void()> hook) { abort_hooks_.push_back(std::move(hook)); }
  /// Called (on the loop) once, when the run starts stopping.
  void on_stop(std::function<void()> hook) { stop_hooks_.push_back(std::move(hook)); }

  /// Completes when the run aborts, or at once after finish()
  /// (for `co_await (work() || control.wait_abort())`).
  asio::awaitable<void> wait_abort();
  /// Completes when the run starts stopping (or aborts), or at once after finish().
  asio::awaitable<void> wait_stop();

  /// Watches SIGINT and SIGTERM until finish() is called.
  void watch_signals(std::chrono::milliseconds grace);
  /// Stops and aborts the run when `limit` has passed.
  void set_deadline(std::chrono::milliseconds limit);
  /// Stops watching signals and timers so the loop can run out of work.
  void finish();

 private:
  void arm_signal_wait();
  /// Makes sure the process ends within `limit` (SIGALRM, exit `status`), unless
  /// an earlier end is already set.
  void hard_stop_within(std::chrono::milliseconds limit, int status);

  asio::any_io_executor ex_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> aborted_{false};
  StopReason reason_ = StopReason::none;
  std::chrono::milliseconds grace_{5000};
  asio::signal_set signals_;
  asio::steady_timer grace_timer_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer abort_wait_;  // never expires; cancelled on abort
  asio::steady_timer stop_wait_;   // never expires; cancelled on stop
  std::vector<std::function<void()>> abort_hooks_;
  std::vector<std::function<void()>> stop_hooks_;
  bool watching_signals_ = false;
  std::chrono::steady_clock::time_point hard_stop_due_ = std::chrono::steady_clock::time_point::max();
  bool finished_ = false;
};

}  // namespace aetl
