#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

#include "engine/rate_limiter.h"

using aetl::RateLimiter;
using Clock = RateLimiter::Clock;
using namespace std::chrono_literals;

namespace {

/// A synthetic start time well away from the clock's epoch.
const Clock::time_point t0 = Clock::time_point{} + 1000h;

/// Offset of `t` from t0, in whole microseconds (exact for the rates used here).
long long us(Clock::time_point t) { return std::chrono::duration_cast<std::chrono::microseconds>(t - t0).count(); }

}  // namespace

TEST_CASE("the first caller passes at once", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 10);
  CHECK(limiter.reserve(t0) == t0);
}

TEST_CASE("callers arriving together are spaced by 1/rate", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 10);  // one every 100 ms
  std::vector<long long> at;
  for (int i = 0; i < 5; ++i) at.push_back(us(limiter.reserve(t0)));
  CHECK(at == std::vector<long long>{0, 100'000, 200'000, 300'000, 400'000});
}

TEST_CASE("the spacing equals 1/rate for a rate that is not a round number", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 3);
  auto prev = limiter.reserve(t0);
  for (int i = 0; i < 30; ++i) {
    auto next = limiter.reserve(t0);
    std::chrono::duration<double> gap = next - prev;
    CHECK(gap.count() == Approx(1.0 / 3).margin(1e-8));
    prev = next;
  }
  // 30 intervals later: no drift beyond rounding of the interval to nanoseconds.
  std::chrono::duration<double> total = prev - t0;
  CHECK(total.count() == Approx(10.0).margin(1e-6));
}

TEST_CASE("callers arriving exactly on their slots are never delayed", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 20);  // 50 ms
  for (int i = 0; i < 20; ++i) {
    auto now = t0 + i * 50ms;
    CHECK(limiter.reserve(now) == now);
  }
}

TEST_CASE("a caller arriving between slots waits for its slot", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 10);
  CHECK(us(limiter.reserve(t0)) == 0);
  CHECK(us(limiter.reserve(t0 + 30ms)) == 100'000);
  CHECK(us(limiter.reserve(t0 + 60ms)) == 200'000);
}

TEST_CASE("burst lets that many callers through at once, then the rate applies", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 10, 5);
  for (int i = 0; i < 5; ++i) CHECK(limiter.reserve(t0) == t0);
  CHECK(us(limiter.reserve(t0)) == 100'000);
  CHECK(us(limiter.reserve(t0)) == 200'000);
}

TEST_CASE("a burst below 1 behaves like a burst of 1", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 10, 0.2);
  CHECK(us(limiter.reserve(t0)) == 0);
  CHECK(us(limiter.reserve(t0)) == 100'000);
}

TEST_CASE("a late caller is not owed a backlog of tokens", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 10);
  CHECK(limiter.reserve(t0) == t0);

  // Ten idle seconds would be 100 tokens in a naive bucket; without burst only
  // one caller passes at once, the next waits a full interval.
  auto late = t0 + 10s;
  CHECK(limiter.reserve(late) == late);
  CHECK(limiter.reserve(late) == late + 100ms);
  CHECK(limiter.reserve(late) == late + 200ms);
}

TEST_CASE("after an idle period a burst is refilled to its size and no further", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 10, 3);
  for (int i = 0; i < 3; ++i) CHECK(limiter.reserve(t0) == t0);

  auto late = t0 + 1h;
  for (int i = 0; i < 3; ++i) CHECK(limiter.reserve(late) == late);
  CHECK(limiter.reserve(late) == late + 100ms);
}

TEST_CASE("a partially refilled burst lets through only what has accrued", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 10, 3);
  for (int i = 0; i < 3; ++i) CHECK(limiter.reserve(t0) == t0);
  // 3 slots used at t0: the bucket is empty until t0+100ms; at t0+200ms two
  // tokens have come back.
  auto now = t0 + 200ms;
  CHECK(limiter.reserve(now) == now);
  CHECK(limiter.reserve(now) == now);
  CHECK(limiter.reserve(now) == t0 + 300ms);
}

namespace {

asio::awaitable<void> acquire_n(RateLimiter& limiter, int n, int& done) {
  for (int i = 0; i < n; ++i) {
    co_await limiter.acquire();
    ++done;
  }
}

}  // namespace

TEST_CASE("acquire completes for every caller", "[rate_limiter]") {
  asio::io_context io;
  RateLimiter limiter(io.get_executor(), 1e6, 4);  // 1 us apart: no measurable wait
  int done = 0;
  asio::co_spawn(io, acquire_n(limiter, 10, done), asio::detached);
  io.run();
  CHECK(done == 10);
}
