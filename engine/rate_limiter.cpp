#include "engine/rate_limiter.h"

#include <algorithm>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

RateLimiter::RateLimiter(asio::any_io_executor ex, double per_second, double burst)
    : ex_(std::move(ex)),
      interval_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / per_second))),
      tolerance_(std::chrono::duration_cast<Clock::duration>(interval_ * (std::max(burst, 1.0) - 1))) {}

RateLimiter::Clock::time_point RateLimiter::reserve(Clock::time_point now) {
  Clock::time_point tat = std::max(tat_, now);
  Clock::time_point allowed = tat - tolerance_;
  tat_ = tat + interval_;
  return std::max(allowed, now);
}

asio::awaitable<void> RateLimiter::acquire() {
  auto now = Clock::now();
  auto at = reserve(now);
  if (at <= now) co_return;
  asio::steady_timer timer(ex_, at);
  co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace aetl
