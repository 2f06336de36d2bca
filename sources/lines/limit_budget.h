#pragma once
#include <atomic>
#include <cstdint>
#include <limits>

namespace aetl {

struct ChunkWork;
struct LineChunk;

/// Lines left to read under --limit (shared by the inputs, which are read one
/// after the other); unlimited when no limit is set. What counts is a record
/// (csv) or a line that is not over max_line and that a resumed run did not do
/// already.
struct LimitBudget {
  std::atomic<uint64_t> left{std::numeric_limits<uint64_t>::max()};

  /// Keeps the chunk within the budget: lines past it are left for the next run
  /// (csv: the records `work` decoded; else the lines of `chunk`, which may be
  /// null). Returns false once the budget is spent.
  bool take(LineChunk* chunk, ChunkWork& work, bool csv);
  bool spent() const { return left.load(std::memory_order_relaxed) == 0; }
};

}  // namespace aetl
