#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/latency_histogram.h"

using aetl::LatencyHistogram;

namespace {

/// The nearest-rank percentile of sorted samples, the definition the histogram approximates.
double exact_percentile(const std::vector<double>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[rank - 1];
}

void check_within_two_percent(double got, double want) {
  INFO("got " << got << ", want " << want);
  CHECK(got >= want * 0.98 - 1e-9);
  CHECK(got <= want * 1.02 + 1e-9);
}

}  // namespace

TEST_CASE("an empty histogram reports 0 for every percentile", "[histogram]") {
  LatencyHistogram h;
  CHECK(h.count() == 0);
  CHECK(h.max() == 0);
  for (double q : {0.0, 0.5, 0.99, 1.0}) CHECK(h.percentile(q) == 0);
}

TEST_CASE("percentiles of 1..10000 ms are within 2%", "[histogram]") {
  LatencyHistogram h;
  for (int i = 1; i <= 10'000; ++i) h.add(i);
  CHECK(h.count() == 10'000);
  check_within_two_percent(h.percentile(0.5), 5000);
  check_within_two_percent(h.percentile(0.9), 9000);
  check_within_two_percent(h.percentile(0.99), 9900);
  check_within_two_percent(h.percentile(0.999), 9990);
  check_within_two_percent(h.percentile(0.01), 100);
  CHECK(h.percentile(1.0) == 10'000);
}

TEST_CASE("percentiles of a log-normal sample are within 2% of the exact ones", "[histogram]") {
  std::mt19937_64 rng(424242);
  std::lognormal_distribution<double> dist(std::log(80.0), 1.2);  // median ~80 ms, long tail
  LatencyHistogram h;
  std::vector<double> samples;
  for (int i = 0; i < 50'000; ++i) {
    double ms = dist(rng);
    samples.push_back(ms);
    h.add(ms);
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999}) {
    INFO("q = " << q);
    check_within_two_percent(h.percentile(q), exact_percentile(samples, q));
  }
  CHECK(h.max() == samples.back());
  CHECK(h.percentile(1.0) == samples.back());
}

TEST_CASE("the maximum is exact, not a bucket bound", "[histogram]") {
  LatencyHistogram h;
  h.add(12.5);
  h.add(123.456);
  h.add(7);
  CHECK(h.max() == 123.456);
  CHECK(h.percentile(1.0) == 123.456);
  CHECK(h.count() == 3);
}

TEST_CASE("a single sample is every percentile, to within its bucket", "[histogram]") {
  LatencyHistogram h;
  h.add(250);
  for (double q : {0.0, 0.01, 0.5, 1.0}) {
    INFO("q = " << q);
    check_within_two_percent(h.percentile(q), 250);
    CHECK(h.percentile(q) <= 250);  // never above the largest sample
  }
}

TEST_CASE("tiny and zero latencies fall into the first bucket", "[histogram]") {
  LatencyHistogram h;
  h.add(0);
  h.add(0.001);
  h.add(0.005);
  CHECK(h.count() == 3);
  CHECK(h.percentile(0.5) <= 0.01);
  CHECK(h.percentile(1.0) == 0.005);
  CHECK(h.max() == 0.005);
}

TEST_CASE("a percentile never decreases as q grows", "[histogram]") {
  std::mt19937_64 rng(5);
  std::exponential_distribution<double> dist(1.0 / 40);
  LatencyHistogram h;
  for (int i = 0; i < 5000; ++i) h.add(dist(rng));
  double prev = 0;
  for (int i = 0; i <= 1000; ++i) {
    double p = h.percentile(i / 1000.0);
    REQUIRE(p >= prev);
    prev = p;
  }
  CHECK(prev == h.max());
}
