#pragma once

namespace aetl {

/// This binary replaces the global nothrow `operator new` and `operator new[]`
/// (engine/nothrow_new.cpp: malloc, as libstdc++'s own; the default operator
/// delete frees it) so that a failure is seen even where the caller does not
/// report it: simdjson 3.0's On-Demand parser ignores a failed allocation of its
/// string buffer and later writes through null. Each thread has its own flag.

/// Clears this thread's flag.
void clear_nothrow_failure() noexcept;
/// Whether a nothrow allocation on this thread failed since the last clear.
bool nothrow_failure() noexcept;

/// Tests: the n-th nothrow allocation from now (on any thread) fails, as if the
/// memory ran out; n < 0 turns that off.
void fail_nothrow_allocation_in(int n) noexcept;

}  // namespace aetl
