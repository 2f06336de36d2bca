#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "pipeline/run/dead_letters.h"
#include "pipeline/run/pool_stage.h"
#include "pipeline/run/record_step.h"
#include "pipeline/run/run_context.h"

namespace aetl {

/// One step of a chain and the part of the pipeline it reports as.
struct ChainedStep {
  std::shared_ptr<RecordStep> step;
  PartStats* stats = nullptr;
};

/// Consecutive record steps run as one: a batch goes through the first step, the
/// survivors through the next, and so on, in one pool job (each step's counters
/// and time are still kept apart).
class StepChain {
 public:
  StepChain() = default;
  explicit StepChain(std::vector<ChainedStep> steps) : steps_(std::move(steps)) {}

  void append(const StepChain& more) { steps_.insert(steps_.end(), more.steps_.begin(), more.steps_.end()); }
  bool empty() const { return steps_.empty(); }
  const std::vector<ChainedStep>& steps() const { return steps_; }

  /// Pool thread: runs `records` through every step; the survivors stay in
  /// `records`, in order. Dropped positions and failures land in `out`.
  /// `from`: the steps before it were applied already (their tallies are in `out`).
  void run(size_t lane, std::vector<StepRecord>& records, StageOutput& out, size_t from = 0) const;

  /// Loop thread: adds a batch's tallies to each step's counters.
  void account(const std::vector<StepTally>& tally) const;

 private:
  std::vector<ChainedStep> steps_;
};

/// A chain of steps as a stage of its own (behind a source that does not run
/// them, or behind a stage that is not a step).
class StepChainStage final : public PoolStage {
 public:
  StepChainStage(RunContext& run, StepChain chain);
  StepChain& chain() { return chain_; }

 protected:
  void process(size_t lane, Batch& in, StageOutput& out) override;
  void account(const StageOutput& result, size_t in, double busy) override;

 private:
  StepChain chain_;
};

/// A stage of one step (the runner joins neighbouring ones into one chain).
std::unique_ptr<Stage> step_stage(RunContext& run, PartStats& stats, std::shared_ptr<RecordStep> step);

/// Copies the survivors into Records (the only allocation per record that leaves).
void take_records(std::vector<StepRecord>& records, Batch& out);

}  // namespace aetl
