#pragma once
#include <array>
#include <cstdint>

namespace aetl {

/// Latencies in log-spaced buckets (about 2% wide) from 0.01 ms to ~10 hours:
/// constant memory, percentiles within a bucket's width.
class LatencyHistogram {
 public:
  void add(double ms);
  uint64_t count() const { return count_; }
  /// The value below which `q` (0..1) of the samples fall; 0 when empty.
  double percentile(double q) const;
  double max() const { return max_; }

 private:
  static constexpr int kBuckets = 1200;
  std::array<uint32_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  double max_ = 0;
};

}  // namespace aetl
