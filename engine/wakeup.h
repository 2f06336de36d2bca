#pragma once
#include <chrono>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

/// A wake-up call between coroutines on the loop: wait() returns after notify()
/// or at `until`. A notify with nobody waiting is remembered, so a wake-up that
/// comes between checking a condition and waiting is not lost.
class Wakeup {
 public:
  explicit Wakeup(asio::any_io_executor ex) : timer_(ex, asio::steady_timer::time_point::max()) {}
  void notify() {
    pending_ = true;
    timer_.cancel();
  }
  asio::awaitable<void> wait(std::chrono::steady_clock::time_point until = std::chrono::steady_clock::time_point::max()) {
    if (pending_) {
      pending_ = false;
      co_return;
    }
    timer_.expires_at(until);
    asio::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    pending_ = false;
  }

 private:
  asio::steady_timer timer_;
  bool pending_ = false;
};

}  // namespace aetl
