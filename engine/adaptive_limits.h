#pragma once
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"

namespace aetl {

/// Per key (a host), a concurrency limit that finds its own value, as TCP finds
/// its window (additive increase, multiplicative decrease):
///  - a round of good answers (as many as the limit) whose latency stays near the
///    key's baseline (the lowest of its recent latencies) raises it by one, up to
///    `max`;
///  - an overload signal (429, 503, a timeout) or a latency beyond twice the
///    baseline lowers it ×0.9, at most once per round: signals from attempts that
///    started before the last decrease do not count again;
///  - a pause (Retry-After) holds every new attempt for the key until it ends.
/// Keys are kept once seen, so what was learnt about a host stays. Loop thread only.
class AdaptiveLimits {
 public:
  using Clock = std::chrono::steady_clock;
  struct Settings {
    double initial = 4;
    double max = 256;
  };
  AdaptiveLimits(asio::any_io_executor ex, Settings settings);
  ~AdaptiveLimits();

  /// Waits until `key` has a free slot under its limit and is not paused; returns
  /// when the attempt starts (hand it back to release()).
  asio::awaitable<Clock::time_point> acquire(const std::string& key);

  enum class Signal {
    good,      ///< an answer: its latency counts
    overload,  ///< 429, 503, a timeout: the server (or the way to it) is full
    neutral,   ///< anything else (a refused connection, a 404 is `good`)
  };
  /// The attempt that started at `started` ended; `pause`: how long the key must
  /// rest before the next attempt (Retry-After; 0: none).
  void release(const std::string& key, Clock::time_point started, Signal signal,
               std::chrono::milliseconds pause = std::chrono::milliseconds(0));

  /// The current limit of `key` (its initial one if unseen).
  size_t limit(const std::string& key) const;
  /// Every key's current limit.
  std::vector<std::pair<std::string, size_t>> limits() const;
  /// An abort: every waiter, and every later acquire(), returns at once (a
  /// Retry-After pause no longer holds anyone); the caller sees the abort and gives up.
  void wake_all();

 private:
  struct Key;
  Key& key(const std::string& name);
  void wake(Key& k);

  asio::any_io_executor ex_;
  Settings settings_;
  bool aborted_ = false;
  std::unordered_map<std::string, std::unique_ptr<Key>> keys_;
};

}  // namespace aetl
