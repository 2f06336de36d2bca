#include "net/redis/shared_rate_limiter.h"

#include <algorithm>
#include <cmath>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "net/redis/redis_connection.h"

namespace aetl::redis {
namespace {

// KEYS[1]: the bucket (its theoretical arrival time, in microseconds of the
// server's clock). ARGV: interval and tolerance in microseconds, and how long
// (ms) the key outlives its last reserved slot. Returns how many microseconds the
// caller waits before its slot.
constexpr const char* kScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], next, 'PX', math.floor((next - now) / 1000) + tonumber(ARGV[3]))
local wait = tat - tonumber(ARGV[2]) - now
if wait < 0 then wait = 0 end
return wait
)lua";

}  // namespace

const char* SharedRateLimiter::script() { return kScript; }

std::function<std::unique_ptr<RateGate>(asio::any_io_executor)> shared_rate_gate(RedisUrl url, std::string name,
                                                                                double per_second, double burst) {
  return [url = std::move(url), key = "aetl:rate:" + name, per_second, burst](asio::any_io_executor ex) {
    return std::make_unique<SharedRateLimiter>(std::move(ex), url, key, per_second, burst,
                                               std::chrono::milliseconds(5000));
  };
}

SharedRateLimiter::SharedRateLimiter(asio::any_io_executor ex, RedisUrl url, std::string key, double per_second,
                                     double burst, std::chrono::milliseconds timeout)
    : ex_(std::move(ex)), url_(std::move(url)), key_(std::move(key)), timeout_(timeout) {
  double interval = 1e6 / per_second;
  interval_us_ = std::to_string(static_cast<long long>(std::llround(interval)));
  tolerance_us_ = std::to_string(static_cast<long long>(std::llround(interval * (std::max(burst, 1.0) - 1))));
  // A minute past the last slot reserved: the key goes.
  ttl_ms_ = "60000";
}

SharedRateLimiter::~SharedRateLimiter() = default;

asio::awaitable<std::shared_ptr<RedisConnection>> SharedRateLimiter::connection() {
  // One connection for all callers: the others wait while one connects.
  while (connecting_) {
    asio::steady_timer t(ex_, std::chrono::milliseconds(10));
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!conn_ || conn_->broken()) {
    connecting_ = true;
    std::exception_ptr error;
    try {
      conn_ = co_await RedisConnection::connect(ex_, url_, timeout_);
    } catch (...) {
      error = std::current_exception();
    }
    connecting_ = false;
    if (error) std::rethrow_exception(error);
  }
  co_return conn_;
}

asio::awaitable<void> SharedRateLimiter::acquire() {
  RedisCommand eval{"EVAL", kScript, "1", key_, interval_us_, tolerance_us_, ttl_ms_};
  std::chrono::milliseconds delay{200};
  long long wait_us = 0;
  for (int attempt = 1;; ++attempt) {
    std::exception_ptr error;
    try {
      std::shared_ptr<RedisConnection> c = co_await connection();
      RedisReply r = co_await c->command(eval, timeout_);
      if (r.type == RedisReply::Type::integer) {
        wait_us = r.integer;
        break;
      }
      if (!is_transient_error(r))
        throw RedisError(url_.where() + ": the shared rate's script: " + r.str, RedisError::Kind::reply);
      throw RedisError(url_.where() + ": " + r.str, RedisError::Kind::connection);
    } catch (const RedisError& e) {
      if (e.kind != RedisError::Kind::connection || attempt > 10) throw;
      spdlog::warn("shared rate {}: {} (attempt {}, connecting again in {} ms)", key_, e.what(), attempt,
                   delay.count());
    }
    asio::steady_timer t(ex_, delay);
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    delay = std::min(delay * 2, std::chrono::milliseconds(5000));
  }
  if (wait_us <= 0) co_return;
  asio::steady_timer t(ex_, std::chrono::microseconds(wait_us));
  co_await t.async_wait(asio::use_awaitable);
}

}  // namespace aetl::redis
