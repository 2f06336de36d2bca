#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

namespace aetl {

/// When and how long to wait before trying an operation again.
struct RetryPolicy {
  int max_retries = 2;                                  ///< retries after the first attempt
  std::chrono::milliseconds min_backoff{250};           ///< base of the exponential
  std::chrono::milliseconds max_backoff{30'000};        ///< cap of one wait
};

/// The wait before retry number `retry` (1-based): "full jitter", uniform in
/// [0, min(max_backoff, min_backoff * 2^(retry-1))].
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, std::mt19937_64& rng);

/// The wait before retrying a response that carried Retry-After (seconds, already
/// converted from an HTTP-date by libcurl): the larger of the jittered backoff and
/// the server's wish. nullopt when the server asks for longer than max_backoff:
/// the caller gives up rather than hanging on an unbounded wait.
std::optional<std::chrono::milliseconds> retry_after_delay(const RetryPolicy& policy, int retry,
                                                           int64_t retry_after_seconds, std::mt19937_64& rng);

}  // namespace aetl
