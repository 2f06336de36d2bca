#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <random>

#include "engine/retry.h"

using aetl::backoff_delay;
using aetl::retry_after_delay;
using aetl::RetryPolicy;
using std::chrono::milliseconds;

namespace {

RetryPolicy policy(int64_t min_ms, int64_t max_ms) {
  RetryPolicy p;
  p.min_backoff = milliseconds(min_ms);
  p.max_backoff = milliseconds(max_ms);
  return p;
}

}  // namespace

TEST_CASE("backoff_delay stays within [0, min(max, base * 2^(n-1))]", "[retry]") {
  RetryPolicy p = policy(250, 30'000);
  std::mt19937_64 rng(12345);
  for (int retry = 1; retry <= 12; ++retry) {
    int64_t ceiling = std::min<int64_t>(30'000, int64_t{250} << (retry - 1));
    int64_t lo = INT64_MAX, hi = -1;
    for (int draw = 0; draw < 2000; ++draw) {
      int64_t d = backoff_delay(p, retry, rng).count();
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    INFO("retry " << retry << ", ceiling " << ceiling);
    CHECK(lo >= 0);
    CHECK(hi <= ceiling);
    // Full jitter: the draws cover the range (2000 uniform draws, fixed seed).
    CHECK(lo < ceiling / 10 + 1);
    CHECK(hi > ceiling * 9 / 10);
  }
}

TEST_CASE("backoff_delay never exceeds max_backoff, however large the retry number", "[retry]") {
  RetryPolicy p = policy(250, 30'000);
  std::mt19937_64 rng(7);
  for (int retry : {20, 40, 41, 63, 64, 65, 100, 1000, 1 << 20, INT_MAX}) {
    INFO("retry " << retry);
    for (int draw = 0; draw < 500; ++draw) {
      auto d = backoff_delay(p, retry, rng);
      REQUIRE(d.count() >= 0);
      REQUIRE(d <= p.max_backoff);
    }
  }
}

TEST_CASE("backoff_delay does not overflow with a very large cap and base", "[retry]") {
  std::mt19937_64 rng(99);
  RetryPolicy huge_cap = policy(250, INT64_MAX);
  RetryPolicy huge_base = policy(INT64_MAX / 2, INT64_MAX);
  for (int retry : {1, 30, 41, 64, INT_MAX}) {
    INFO("retry " << retry);
    for (int draw = 0; draw < 200; ++draw) {
      auto a = backoff_delay(huge_cap, retry, rng).count();
      REQUIRE(a >= 0);
      REQUIRE(a <= (int64_t{250} << std::min(retry - 1, 40)));
      auto b = backoff_delay(huge_base, retry, rng).count();
      REQUIRE(b >= 0);
      REQUIRE(b <= INT64_MAX);
    }
  }
}

TEST_CASE("backoff_delay treats a retry number below 1 like the first retry", "[retry]") {
  RetryPolicy p = policy(100, 10'000);
  std::mt19937_64 rng(3);
  for (int retry : {0, -1, -100}) {
    for (int draw = 0; draw < 300; ++draw) {
      auto d = backoff_delay(p, retry, rng).count();
      REQUIRE(d >= 0);
      REQUIRE(d <= 100);
    }
  }
}

TEST_CASE("backoff_delay is reproducible with the same seed", "[retry]") {
  RetryPolicy p;
  std::mt19937_64 a(2024), b(2024);
  for (int retry = 1; retry < 50; ++retry) CHECK(backoff_delay(p, retry, a) == backoff_delay(p, retry, b));
}

TEST_CASE("backoff_delay with a zero max_backoff is always zero", "[retry]") {
  RetryPolicy p = policy(250, 0);
  std::mt19937_64 rng(5);
  for (int retry = 1; retry < 10; ++retry) CHECK(backoff_delay(p, retry, rng).count() == 0);
}

TEST_CASE("retry_after_delay honours the seconds the server asked for", "[retry]") {
  RetryPolicy p = policy(250, 30'000);
  std::mt19937_64 rng(1);
  // The jittered backoff of the first retry is at most 250 ms: the server's wish wins.
  auto d = retry_after_delay(p, 1, 10, rng);
  REQUIRE(d.has_value());
  CHECK(d->count() == 10'000);

  auto at_cap = retry_after_delay(p, 1, 30, rng);
  REQUIRE(at_cap.has_value());
  CHECK(at_cap->count() == 30'000);
}

TEST_CASE("retry_after_delay is never shorter than the jittered backoff", "[retry]") {
  RetryPolicy p = policy(1000, 30'000);
  std::mt19937_64 rng(11);
  for (int draw = 0; draw < 500; ++draw) {
    auto d = retry_after_delay(p, 5, 1, rng);  // backoff ceiling 16 s, server asks 1 s
    REQUIRE(d.has_value());
    REQUIRE(d->count() >= 1000);
    REQUIRE(d->count() <= 16'000);
  }
  auto zero = retry_after_delay(p, 1, 0, rng);
  REQUIRE(zero.has_value());
  CHECK(zero->count() <= 1000);
}

TEST_CASE("retry_after_delay gives up when the server asks for more than max_backoff", "[retry]") {
  RetryPolicy p = policy(250, 30'000);
  std::mt19937_64 rng(1);
  CHECK_FALSE(retry_after_delay(p, 1, 31, rng).has_value());
  CHECK_FALSE(retry_after_delay(p, 1, 3600, rng).has_value());
  CHECK_FALSE(retry_after_delay(p, 3, 86'400 * 365, rng).has_value());
}

TEST_CASE("retry_after_delay gives up on an absurdly large Retry-After", "[retry]") {
  // retry_after_seconds * 1000 overflows int64_t for values above ~9.2e15
  // (a server can send "Retry-After: 10000000000000000"); the product wraps
  // negative and the request is retried after a short backoff instead.
  RetryPolicy p = policy(250, 30'000);
  std::mt19937_64 rng(1);
  CHECK_FALSE(retry_after_delay(p, 1, 10'000'000'000'000'000LL, rng).has_value());
  CHECK_FALSE(retry_after_delay(p, 1, INT64_MAX, rng).has_value());
}
