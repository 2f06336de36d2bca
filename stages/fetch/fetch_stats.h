#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "engine/latency_histogram.h"

namespace aetl {

/// Counters of a fetch run, kept on the loop thread; read by the progress display
/// and the final summary.
struct FetchStats {
  bool total_known = false;
  uint64_t total = 0;          ///< requests in the input, when it could be counted up front
  uint64_t read = 0;           ///< request lines read so far
  uint64_t skipped_done = 0;   ///< already finished according to --state
  uint64_t input_errors = 0;
  uint64_t in_flight = 0;
  uint64_t done = 0;           ///< results produced (ok or failed)
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t retries = 0;
  uint64_t aborted = 0;        ///< cancelled by a stop; left for the next run
  uint64_t bytes = 0;
  std::array<uint64_t, 6> by_class{};  ///< [0] no HTTP response, [1..5] 1xx..5xx
  LatencyHistogram latency;
  std::map<std::string, uint64_t> host_limits;  ///< -j auto: each host's current limit
};

}  // namespace aetl
