#pragma once
#include <exception>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

/// Owns coroutines spawned by a stage: wait_all() returns once every one has
/// finished, and first_error() holds the first exception any of them threw.
/// No coroutine outlives the stage that spawned it.
class TaskGroup {
 public:
  explicit TaskGroup(asio::any_io_executor ex) : ex_(ex), idle_(ex, asio::steady_timer::time_point::max()) {}

  template <class Awaitable>
  void spawn(Awaitable task) {
    ++active_;
    asio::co_spawn(ex_, std::move(task), [this](std::exception_ptr e) {
      if (e && !first_error_) first_error_ = e;
      if (--active_ == 0) idle_.cancel();
    });
  }

  asio::awaitable<void> wait_all() {
    while (active_ > 0) {
      asio::error_code ec;
      idle_.expires_at(asio::steady_timer::time_point::max());
      co_await idle_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  size_t active() const { return active_; }
  std::exception_ptr first_error() const { return first_error_; }

 private:
  asio::any_io_executor ex_;
  asio::steady_timer idle_;
  size_t active_ = 0;
  std::exception_ptr first_error_;
};

}  // namespace aetl
