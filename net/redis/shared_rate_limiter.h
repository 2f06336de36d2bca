#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "engine/rate_limiter.h"
#include "net/redis/redis_url.h"

namespace aetl::redis {

class RedisConnection;

/// A rate shared by every process that uses the same Redis key: the token
/// bucket of RateLimiter (GCRA), kept in Redis and moved on atomically by a Lua
/// script that reads the server's clock (TIME), so workers on many hosts with
/// unsynchronised clocks together start at most `per_second` a second (`burst`
/// at once). Each acquire() reserves the next slot and waits for it. The key
/// expires once idle. A lost connection is made again with backoff (200 ms
/// doubling to 5 s, 10 tries): meanwhile callers wait, so the rate is never
/// exceeded; after that acquire() throws RedisError. One executor.
class SharedRateLimiter final : public RateGate {
 public:
  SharedRateLimiter(asio::any_io_executor ex, RedisUrl url, std::string key, double per_second, double burst,
                    std::chrono::milliseconds timeout);
  ~SharedRateLimiter() override;
  asio::awaitable<void> acquire() override;

  /// The Lua script (for tests that run it through redis-cli).
  static const char* script();

 private:
  /// The connection, made (again) if needed; callers hold it across their command.
  asio::awaitable<std::shared_ptr<RedisConnection>> connection();

  asio::any_io_executor ex_;
  RedisUrl url_;
  std::string key_;
  std::string interval_us_;
  std::string tolerance_us_;
  std::string ttl_ms_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<RedisConnection> conn_;
  bool connecting_ = false;
};

/// What a fetch stage's AttemptLimits::shared_rate takes: makes the limiter of
/// `name` (Redis key aetl:rate:NAME) on the stage's executor.
std::function<std::unique_ptr<RateGate>(asio::any_io_executor)> shared_rate_gate(RedisUrl url, std::string name,
                                                                                double per_second, double burst);

}  // namespace aetl::redis
