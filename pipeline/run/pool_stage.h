#pragma once
#include <string>
#include <utility>
#include <vector>

#include "pipeline/engine.h"
#include "pipeline/run/dead_letters.h"
#include "pipeline/run/run_context.h"

namespace aetl {

/// What a CPU stage made of one batch.
struct StageOutput {
  Batch out;
  std::vector<Position> dropped;          ///< filtered out: handled
  std::vector<FailedRecord> failed;       ///< to the dead letter
  std::vector<std::pair<Position, uint32_t>> splits;  ///< one input became n outputs (n != 1)
};

/// A stage that works batch by batch on the blocking pool (filter, select, set,
/// jq): the loop thread only moves batches, so the stages of a pipeline work on
/// different batches on different cores at once. Batches keep their order.
class PoolStage : public Stage {
 public:
  PoolStage(RunContext& run, PartStats& stats) : run_(run), stats_(stats) {}
  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override;

 protected:
  /// Runs on a pool thread, one batch at a time (never two at once for one stage).
  virtual void process(Batch& in, StageOutput& out) = 0;

  RunContext& run_;
  PartStats& stats_;
};

}  // namespace aetl
