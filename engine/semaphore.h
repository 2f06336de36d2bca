#pragma once
#include <cstddef>
#include <deque>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

/// A counting semaphore for coroutines on one executor (not thread-safe).
/// acquire() suspends while no permit is free; release() hands a permit straight
/// to the longest waiter (strict FIFO, no overtaking). If the awaiting coroutine is
/// cancelled, acquire() throws operation_aborted and holds no permit.
class AsyncSemaphore {
 public:
  AsyncSemaphore(asio::any_io_executor ex, size_t permits);
  ~AsyncSemaphore();

  asio::awaitable<void> acquire();
  bool try_acquire();
  void release(size_t n = 1);

  size_t in_use() const { return permits_ - free_; }
  size_t permits() const { return permits_; }
  size_t waiting() const { return waiters_.size(); }

 private:
  struct Waiter;
  asio::any_io_executor ex_;
  size_t permits_;
  size_t free_;
  std::deque<Waiter*> waiters_;  // each lives in its acquire() frame
};

}  // namespace aetl
