#include "engine/shutdown.h"

#include <errno.h>
#include <sys/time.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

namespace aetl {
namespace {

volatile sig_atomic_t g_hard_stop_status = 130;

extern "C" void hard_stop(int) {
  static const char tail[] = ": did not stop in time; exiting now (what was committed is kept)\n";
  const char* name = program_invocation_short_name;
  ssize_t n = ::write(2, name, std::strlen(name));
  n = ::write(2, tail, sizeof tail - 1);
  (void)n;
  ::_exit(g_hard_stop_status);
}

/// Arms (or with 0, disarms) the process's one real-time timer, which ends the
/// process with `status`; async-signal-safe.
void arm_hard_stop(std::chrono::milliseconds after, int status = 130) {
  g_hard_stop_status = status;
  if (after.count() > 0) {
    struct sigaction sa {};
    sa.sa_handler = hard_stop;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGALRM, &sa, nullptr);
  }
  itimerval t{};
  t.it_value.tv_sec = after.count() / 1000;
  t.it_value.tv_usec = (after.count() % 1000) * 1000;
  ::setitimer(ITIMER_REAL, &t, nullptr);
}

}  // namespace

RunControl::RunControl(asio::any_io_executor ex)
    : ex_(ex),
      signals_(ex),
      grace_timer_(ex),
      deadline_timer_(ex),
      abort_wait_(ex, asio::steady_timer::time_point::max()),
      stop_wait_(ex, asio::steady_timer::time_point::max()) {}

RunControl::~RunControl() {
  if (hard_stop_due_ != std::chrono::steady_clock::time_point::max()) arm_hard_stop(std::chrono::milliseconds(0));
}

void RunControl::hard_stop_within(std::chrono::milliseconds limit, int status) {
  auto due = std::chrono::steady_clock::now() + limit;
  if (due >= hard_stop_due_) return;  // an earlier one stands: more signals never push it back
  hard_stop_due_ = due;
  arm_hard_stop(limit, status);
}

void RunControl::request_stop(StopReason reason) {
  if (stopping_.exchange(true)) return;
  reason_ = reason;
  stop_wait_.cancel();
  auto hooks = std::move(stop_hooks_);
  for (auto& hook : hooks) hook();
}

void RunControl::request_abort() {
  request_stop(StopReason::error);
  if (aborted_.exchange(true)) return;
  // Aborted work ends at once; whatever would keep the process waiting past that
  // (a completion lost to an allocation failure) must not keep it for ever.
  hard_stop_within(kAbortedStopLimit, reason_ == StopReason::signal ? 130 : 1);
  grace_timer_.cancel();  // already aborting: no "grace period over" later
  abort_wait_.cancel();
  auto hooks = std::move(abort_hooks_);
  for (auto& hook : hooks) hook();
}

asio::awaitable<void> RunControl::wait_abort() {
  if (aborted() || finished_) co_return;
  asio::error_code ec;
  co_await abort_wait_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> RunControl::wait_stop() {
  if (stopping() || finished_) co_return;
  asio::error_code ec;
  co_await stop_wait_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void RunControl::watch_signals(std::chrono::milliseconds grace) {
  grace_ = grace;
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  watching_signals_ = true;
  arm_signal_wait();
}

void RunControl::arm_signal_wait() {
  signals_.async_wait([this](const asio::error_code& ec, int signo) {
    if (ec) return;
    if (!stopping()) {
      spdlog::warn("{}: stopping; finishing work in flight (up to {} ms; again to abort)",
                   signo == SIGINT ? "interrupted" : "terminated", grace_.count());
      hard_stop_within(grace_ + kHardStopMargin, 130);
      request_stop(StopReason::signal);
      grace_timer_.expires_after(grace_);
      grace_timer_.async_wait([this](const asio::error_code& e) {
        if (e) return;
        spdlog::warn("grace period over: aborting work in flight");
        request_abort();
      });
    } else {
      if (reason_ != StopReason::signal) reason_ = StopReason::signal;
      hard_stop_within(kHardStopMargin, 130);
      if (!aborted()) spdlog::warn("second signal: aborting work in flight");
      request_abort();
      reason_ = StopReason::signal;
    }
    arm_signal_wait();
  });
}

void RunControl::set_deadline(std::chrono::milliseconds limit) {
  deadline_timer_.expires_after(limit);
  deadline_timer_.async_wait([this, limit](const asio::error_code& ec) {
    if (ec) return;
    spdlog::warn("deadline of {} ms reached: stopping", limit.count());
    request_stop(StopReason::deadline);
    request_abort();
  });
}

void RunControl::finish() {
  finished_ = true;
  if (watching_signals_) {
    asio::error_code ec;
    signals_.cancel(ec);
    signals_.clear(ec);
    watching_signals_ = false;
  }
  grace_timer_.cancel();
  deadline_timer_.cancel();
  abort_wait_.cancel();
  stop_wait_.cancel();
}

}  // namespace aetl
