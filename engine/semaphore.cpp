#include "engine/semaphore.h"

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

struct AsyncSemaphore::Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : wake(ex, asio::steady_timer::time_point::max()) {}
  asio::steady_timer wake;  // never expires: cancelled to hand over a permit
  bool granted = false;
};

AsyncSemaphore::AsyncSemaphore(asio::any_io_executor ex, size_t permits)
    : ex_(std::move(ex)), permits_(permits), free_(permits) {}

AsyncSemaphore::~AsyncSemaphore() = default;

bool AsyncSemaphore::try_acquire() {
  if (free_ == 0 || !waiters_.empty()) return false;
  --free_;
  return true;
}

asio::awaitable<void> AsyncSemaphore::acquire() {
  if (try_acquire()) co_return;
  Waiter me(ex_);
  waiters_.push_back(&me);
  asio::error_code ec;
  try {
    co_await me.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  } catch (...) {
    // The wait could not start (no memory for it): leave the queue before this
    // frame goes, or a later release() would wake a waiter that no longer exists.
    if (me.granted) release();
    else waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &me));
    throw;
  }
  auto state = co_await asio::this_coro::cancellation_state;
  bool cancelled = state.cancelled() != asio::cancellation_type::none;
  if (me.granted && !cancelled) co_return;
  if (me.granted)
    release();  // granted and cancelled at once: pass the permit on
  else
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &me));
  throw asio::system_error(asio::error::operation_aborted);
}

void AsyncSemaphore::release(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (waiters_.empty()) {
      ++free_;
      continue;
    }
    Waiter* next = waiters_.front();
    waiters_.pop_front();
    next->granted = true;  // the permit goes straight to it: free_ stays as it is
    next->wake.cancel();
  }
}

}  // namespace aetl
