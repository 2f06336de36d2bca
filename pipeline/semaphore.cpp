#include "pipeline/semaphore.h"

#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

namespace aetl {

AsyncSemaphore::AsyncSemaphore(asio::any_io_executor ex, size_t permits)
    : permits_(permits), free_(permits), wake_(ex, asio::steady_timer::time_point::max()) {}

bool AsyncSemaphore::try_acquire() {
  if (free_ == 0 || waiting_ > 0) return false;  // no overtaking of queued waiters
  --free_;
  return true;
}

asio::awaitable<void> AsyncSemaphore::acquire() {
  if (try_acquire()) co_return;
  ++waiting_;
  struct Leave {
    size_t& w;
    ~Leave() { --w; }
  } leave{waiting_};
  for (;;) {
    asio::error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    auto state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none) {
      // Our wake-up may have been a permit handed to us: pass it on.
      if (free_ > 0 && waiting_ > 1) wake_.cancel_one();
      throw asio::system_error(asio::error::operation_aborted);
    }
    if (free_ > 0) {
      --free_;
      co_return;
    }
  }
}

void AsyncSemaphore::release(size_t n) {
  free_ += n;
  for (size_t i = 0; i < n && i < waiting_; ++i) wake_.cancel_one();
}

}  // namespace aetl
