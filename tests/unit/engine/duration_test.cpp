#include <catch2/catch.hpp>

#include <string>

#include "engine/duration.h"

using aetl::parse_duration;
using aetl::parse_duration_range;
using aetl::parse_rate;
using aetl::parse_size;

namespace {

/// Milliseconds, or -1 when the text is rejected (keeps failure messages readable).
long long ms(std::string_view text) {
  auto d = parse_duration(text);
  return d ? static_cast<long long>(d->count()) : -1;
}

long long bytes(std::string_view text) {
  auto s = parse_size(text);
  return s ? static_cast<long long>(*s) : -1;
}

}  // namespace

TEST_CASE("durations are read in ms, s, m, h and us", "[duration]") {
  CHECK(ms("250ms") == 250);
  CHECK(ms("0ms") == 0);
  CHECK(ms("1s") == 1000);
  CHECK(ms("1.5s") == 1500);
  CHECK(ms("2m") == 120'000);
  CHECK(ms("2min") == 120'000);
  CHECK(ms("1h") == 3'600'000);
  CHECK(ms("7d") == 604'800'000);
  CHECK(ms("0.5h") == 1'800'000);
  CHECK(ms("2000us") == 2);
}

TEST_CASE("a bare number is a duration in seconds", "[duration]") {
  CHECK(ms("3") == 3000);
  CHECK(ms("0") == 0);
  CHECK(ms("0.25") == 250);
  CHECK(ms("10.") == 10'000);
}

TEST_CASE("a duration below one millisecond is rounded up, never down to zero", "[duration]") {
  CHECK(ms("500us") == 1);
  CHECK(ms("1us") == 1);
  CHECK(ms("0.1ms") == 1);
  CHECK(ms("1500us") == 2);
  CHECK(ms("0us") == 0);
}

TEST_CASE("a duration that is not a non-negative number with a known unit is rejected", "[duration]") {
  for (const char* bad : {"", "s", "ms", "abc", "5x", "5sec", "5S", "-5s", "+5s", " 5s", "5s ", "1.2.3s", ".",
                          ".s", "1e3", "1e3s", "5 parsecs", "five seconds", "5s5", "0x10", "inf", "nan"}) {
    INFO("text: '" << bad << "'");
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

TEST_CASE("an absurdly long duration is rejected", "[duration]") {
  CHECK_FALSE(parse_duration("99999999999999h").has_value());
  CHECK_FALSE(parse_duration("1000000000000000").has_value());  // seconds
}

TEST_CASE("a duration with hundreds of digits is rejected, not thrown", "[duration]") {
  // Overflow or underflow of a double must give nullopt, not an exception.
  // (Built by append: GCC 12 warns falsely on "literal" + std::string.)
  std::string huge = "1";
  huge.append(400, '0').append("s");
  std::string tiny = "0.";
  tiny.append(400, '0').append("1s");
  std::string nines(400, '9');
  std::string nines_rate = nines;
  nines_rate.append("/s");
  std::optional<aetl::Millis> a, b;
  CHECK_NOTHROW(a = parse_duration(huge));
  CHECK_FALSE(a.has_value());
  CHECK_NOTHROW(b = parse_duration(tiny));
  CHECK_NOTHROW(parse_size(nines));
  CHECK_NOTHROW(parse_rate(nines_rate));
}

TEST_CASE("a duration range gives its lower and upper bound", "[duration]") {
  auto r = parse_duration_range("100ms..30s");
  REQUIRE(r.has_value());
  CHECK(r->first.count() == 100);
  CHECK(r->second.count() == 30'000);

  auto same = parse_duration_range("2s..2s");
  REQUIRE(same.has_value());
  CHECK(same->first.count() == 2000);
  CHECK(same->second.count() == 2000);

  auto bare = parse_duration_range("1..2m");
  REQUIRE(bare.has_value());
  CHECK(bare->first.count() == 1000);
  CHECK(bare->second.count() == 120'000);
}

TEST_CASE("a duration range whose lower bound exceeds its upper bound is rejected", "[duration]") {
  CHECK_FALSE(parse_duration_range("30s..100ms").has_value());
  CHECK_FALSE(parse_duration_range("1001ms..1s").has_value());
}

TEST_CASE("a malformed duration range is rejected", "[duration]") {
  for (const char* bad : {"", "..", "1s", "1s..", "..1s", "1s-2s", "1s.2s", "a..b", "1s..2x", "1x..2s"}) {
    INFO("text: '" << bad << "'");
    CHECK_FALSE(parse_duration_range(bad).has_value());
  }
}

TEST_CASE("sizes are read with k, M and G as powers of 1024", "[duration][size]") {
  CHECK(bytes("512k") == 512 * 1024);
  CHECK(bytes("512K") == 512 * 1024);
  CHECK(bytes("2KiB") == 2048);
  CHECK(bytes("2kB") == 2048);
  CHECK(bytes("10MiB") == 10LL * 1024 * 1024);
  CHECK(bytes("5MB") == 5LL * 1024 * 1024);
  CHECK(bytes("3M") == 3LL * 1024 * 1024);
  CHECK(bytes("1G") == 1024LL * 1024 * 1024);
  CHECK(bytes("2GiB") == 2LL * 1024 * 1024 * 1024);
  CHECK(bytes("1.5k") == 1536);
  CHECK(bytes("7B") == 7);
}

TEST_CASE("a bare number is a size in bytes", "[duration][size]") {
  CHECK(bytes("123") == 123);
  CHECK(bytes("0") == 0);
  CHECK(bytes("16777216") == 16'777'216);
}

TEST_CASE("a malformed or absurd size is rejected", "[duration][size]") {
  for (const char* bad : {"", "k", "MiB", "-1", "-1k", "10 XB", "10Mb", "10mib", "1T", "1e6", "ten", "1..2", "0x10"}) {
    INFO("text: '" << bad << "'");
    CHECK_FALSE(parse_size(bad).has_value());
  }
  CHECK_FALSE(parse_size("99999999999G").has_value());
}

TEST_CASE("rates are read per second, minute and hour, and a bare number is per second", "[duration][rate]") {
  auto per = [](std::string_view text) {
    auto r = parse_rate(text);
    return r ? *r : -1.0;
  };
  CHECK(per("50/s") == Approx(50));
  CHECK(per("600/m") == Approx(10));
  CHECK(per("90/min") == Approx(1.5));
  CHECK(per("3600/h") == Approx(1));
  CHECK(per("1/h") == Approx(1.0 / 3600));
  CHECK(per("7") == Approx(7));
  CHECK(per("2.5") == Approx(2.5));
  CHECK(per("0.5/s") == Approx(0.5));
}

TEST_CASE("a rate that is zero or malformed is rejected", "[duration][rate]") {
  for (const char* bad : {"", "0", "0/s", "0.0/m", "/s", "50/", "50/d", "50/sec", "abc", "50x/s", "-5/s", "5/s/s",
                          "five/s", "s/5"}) {
    INFO("text: '" << bad << "'");
    CHECK_FALSE(parse_rate(bad).has_value());
  }
}
