#include "engine/retry.h"

#include <algorithm>

namespace aetl {

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, std::mt19937_64& rng) {
  int64_t base = std::max<int64_t>(policy.min_backoff.count(), 1);
  int shift = std::clamp(retry - 1, 0, 40);
  int64_t cap = policy.max_backoff.count();
  int64_t ceiling = (base > (cap >> shift)) ? cap : std::min(cap, base << shift);
  std::uniform_int_distribution<int64_t> dist(0, std::max<int64_t>(ceiling, 0));
  return std::chrono::milliseconds(dist(rng));
}

std::optional<std::chrono::milliseconds> retry_after_delay(const RetryPolicy& policy, int retry,
                                                           int64_t retry_after_seconds, std::mt19937_64& rng) {
  if (retry_after_seconds > policy.max_backoff.count() / 1000 + 1) return std::nullopt;  // also no overflow below
  auto wanted = std::chrono::milliseconds(retry_after_seconds * 1000);
  if (wanted > policy.max_backoff) return std::nullopt;
  return std::max(wanted, backoff_delay(policy, retry, rng));
}

}  // namespace aetl
