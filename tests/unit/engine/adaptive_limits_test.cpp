#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

#include "engine/adaptive_limits.h"
#include "tests/unit/test_support.h"

using aetl::AdaptiveLimits;
using Clock = AdaptiveLimits::Clock;
using Signal = AdaptiveLimits::Signal;
using aetl::test::run_ready;

namespace {

/// Takes a slot of `key` and counts it.
void take(asio::io_context& io, AdaptiveLimits& limits, std::string key, int& got) {
  asio::co_spawn(
      io,
      [&limits, key, &got]() -> asio::awaitable<void> {
        co_await limits.acquire(key);
        ++got;
      },
      asio::detached);
}

}  // namespace

TEST_CASE("a host's limit grows by one per round of good answers and holds the rest back", "[adaptive]") {
  asio::io_context io;
  AdaptiveLimits limits(io.get_executor(), {4, 10});
  int got = 0;
  for (int i = 0; i < 6; ++i) take(io, limits, "h", got);
  run_ready(io);
  CHECK(got == 4);  // the initial limit
  CHECK(limits.limit("h") == 4);
  // four good answers (a round) raise it to 5: two more may start (one released + one new slot)
  auto t0 = Clock::now();
  for (int i = 0; i < 4; ++i) limits.release("h", t0, Signal::good);
  run_ready(io);
  CHECK(limits.limit("h") == 5);
  CHECK(got == 6);
  // it never passes its maximum
  for (int i = 0; i < 200; ++i) {
    int more = 0;
    take(io, limits, "h", more);
    run_ready(io);
    limits.release("h", Clock::now(), Signal::good);
  }
  run_ready(io);
  CHECK(limits.limit("h") == 10);
  CHECK(limits.limit("other") == 4);  // hosts learn apart
}

TEST_CASE("overload lowers the limit x0.9 once per round; Retry-After pauses the host", "[adaptive]") {
  asio::io_context io;
  AdaptiveLimits limits(io.get_executor(), {20, 100});
  int got = 0;
  for (int i = 0; i < 20; ++i) take(io, limits, "h", got);
  run_ready(io);
  REQUIRE(got == 20);
  auto started = Clock::now();
  // twenty 503s from attempts that all started before the first decrease: one decrease
  for (int i = 0; i < 20; ++i) limits.release("h", started, Signal::overload);
  CHECK(limits.limit("h") == 18);
  // an attempt started after it counts again
  for (int i = 0; i < 2; ++i) take(io, limits, "h", got);
  run_ready(io);
  limits.release("h", Clock::now(), Signal::overload);
  CHECK(limits.limit("h") == 16);  // 18 x 0.9 = 16.2
  // a pause: nothing starts before it ends
  limits.release("h", Clock::now(), Signal::overload, std::chrono::milliseconds(150));
  int after_pause = 0;
  take(io, limits, "h", after_pause);
  run_ready(io);
  CHECK(after_pause == 0);
  io.restart();
  io.run_for(std::chrono::milliseconds(400));
  CHECK(after_pause == 1);
}

TEST_CASE("an answer much slower than the host's baseline counts as overload", "[adaptive]") {
  asio::io_context io;
  AdaptiveLimits limits(io.get_executor(), {10, 100});
  int got = 0;
  for (int i = 0; i < 10; ++i) take(io, limits, "h", got);
  run_ready(io);
  auto now = Clock::now();
  limits.release("h", now - std::chrono::milliseconds(5), Signal::good);   // baseline ~5 ms
  double before = static_cast<double>(limits.limit("h"));
  limits.release("h", now - std::chrono::milliseconds(80), Signal::good);  // > 2 x 5 ms + 10 ms
  CHECK(static_cast<double>(limits.limit("h")) < before);
}
