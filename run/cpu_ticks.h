#pragma once
#include <chrono>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace aetl {

/// A cheap, monotonic count of CPU time for splitting a job's measured time between
/// its parts (reading a clock per record and part would cost more than some parts).
inline uint64_t cpu_ticks() {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

}  // namespace aetl
