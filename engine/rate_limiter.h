#pragma once
#include <chrono>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

/// Something that lets callers through at a rate: acquire() suspends until the
/// caller may start. One executor.
class RateGate {
 public:
  virtual ~RateGate() = default;
  virtual asio::awaitable<void> acquire() = 0;
};

/// A token bucket (in its GCRA form): on average `per_second` acquisitions a
/// second, at most `burst` at once. Each caller reserves its slot when it calls
/// acquire(), so callers are served in call order. Not thread-safe: one executor.
class RateLimiter final : public RateGate {
 public:
  using Clock = std::chrono::steady_clock;

  RateLimiter(asio::any_io_executor ex, double per_second, double burst = 1);

  /// Suspends until the caller's slot; cancellable.
  asio::awaitable<void> acquire() override;

  /// The time the next caller would be let through (for tests and the progress display).
  Clock::time_point reserve(Clock::time_point now);

 private:
  asio::any_io_executor ex_;
  Clock::duration interval_;
  Clock::duration tolerance_;  // (burst - 1) intervals
  Clock::time_point tat_{};    // theoretical arrival time of the next slot
};

}  // namespace aetl
