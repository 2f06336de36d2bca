#include "sources/lines/limit_budget.h"

#include "sources/lines/chunk_work.h"
#include "sources/lines/line_chunks.h"

namespace aetl {

bool LimitBudget::take(LineChunk* chunk, ChunkWork& work, bool csv) {
  uint64_t budget = left.load(std::memory_order_relaxed);
  if (budget == std::numeric_limits<uint64_t>::max()) return true;
  uint64_t taken = 0;
  if (csv) {
    if (work.records.size() > budget) work.records.resize(budget);
    taken = work.records.size();
  } else if (chunk) {
    size_t keep = 0;
    for (; keep < chunk->lines.size() && taken < budget; ++keep) {
      const auto& ref = chunk->lines[keep];
      if (!ref.too_long && !work.mark->is_done(ref.number)) ++taken;
    }
    chunk->lines.resize(keep);
  }
  left.store(budget - taken, std::memory_order_relaxed);
  return budget - taken > 0;
}

}  // namespace aetl
