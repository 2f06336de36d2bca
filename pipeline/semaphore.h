#pragma once
#include <cstddef>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

namespace aetl {

/// A counting semaphore for coroutines on one executor (not thread-safe).
/// acquire() suspends while no permit is free; waiters are woken in FIFO order.
/// If the awaiting coroutine is cancelled, acquire() throws operation_aborted and
/// takes no permit.
class AsyncSemaphore {
 public:
  AsyncSemaphore(asio::any_io_executor ex, size_t permits);

  asio::awaitable<void> acquire();
  bool try_acquire();
  void release(size_t n = 1);

  size_t in_use() const { return permits_ - free_; }
  size_t permits() const { return permits_; }

 private:
  size_t permits_;
  size_t free_;
  size_t waiting_ = 0;
  asio::steady_timer wake_;  // never expires: cancel_one() hands a wake-up to one waiter
};

}  // namespace aetl
