#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "run/dead_letters.h"
#include "run/run_context.h"

namespace aetl {

/// What one step did to one batch.
struct StepTally {
  uint64_t in = 0;
  uint64_t out = 0;
  uint64_t dropped = 0;
  uint64_t failed = 0;
  double busy = 0;
  uint64_t ticks = 0;  ///< cpu_ticks() spent, to share a measured time between steps
};

/// What a CPU stage made of one batch.
struct StageOutput {
  Batch out;
  std::vector<Position> dropped;          ///< filtered out: handled
  std::vector<FailedRecord> failed;       ///< to the dead letter
  std::vector<std::pair<Position, uint32_t>> splits;  ///< one input became n outputs (n != 1)
  std::vector<StepTally> tally;           ///< record steps: what each step did
  uint64_t stepped = 0;                   ///< records the steps saw (one in kTickSample is timed)
};

/// A stage that works batch by batch on the blocking pool (filter, select, set,
/// jq): the loop thread only moves batches. Up to `lanes` batches are worked on at
/// once on different threads (each lane has its own scratch state), and results
/// leave in the order the batches came in.
class PoolStage : public Stage {
 public:
  PoolStage(RunContext& run, PartStats& stats, size_t lanes = kDefaultLanes);
  ~PoolStage() override;
  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override;

  static constexpr size_t kDefaultLanes = 2;

 protected:
  /// Runs on a pool thread. Two calls never share a lane at the same time.
  virtual void process(size_t lane, Batch& in, StageOutput& out) = 0;
  /// Loop thread: adds a finished batch to the counters (the stage's own part by default).
  virtual void account(const StageOutput& result, size_t in, double busy);
  size_t lanes() const { return lanes_; }

  RunContext& run_;
  PartStats& stats_;

 private:
  struct Job;
  size_t lanes_;
};

}  // namespace aetl
