#include "engine/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace aetl {
namespace {
constexpr double kMin = 0.01;      // ms
constexpr double kGrowth = 1.02;
}  // namespace

void LatencyHistogram::add(double ms) {
  int b = ms <= kMin ? 0 : static_cast<int>(std::log(ms / kMin) / std::log(kGrowth)) + 1;
  b = std::clamp(b, 0, kBuckets - 1);
  ++buckets_[static_cast<size_t>(b)];
  ++count_;
  max_ = std::max(max_, ms);
}

double LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[static_cast<size_t>(b)];
    if (seen >= rank) {
      double upper = b == 0 ? kMin : kMin * std::pow(kGrowth, b);
      return std::min(upper, max_);
    }
  }
  return max_;
}

}  // namespace aetl
