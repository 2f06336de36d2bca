#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "run/dead_letters.h"
#include "run/pool_stage.h"
#include "run/record_step.h"
#include "run/run_context.h"

namespace aetl {

/// One step of a chain and the part of the pipeline it reports as.
struct ChainedStep {
  std::shared_ptr<RecordStep> step;
  PartStats* stats = nullptr;
  bool time_only = false;  ///< a sink's row step: only its time is added (the sink counts records)
};

/// Consecutive record steps run as one, in one pool job: each record goes through
/// every step before the next record starts (so a step may leave values for the
/// next one: StepRecord::projected). Each step's counters and time are kept apart.
class StepChain {
 public:
  StepChain() = default;
  explicit StepChain(std::vector<ChainedStep> steps) : steps_(std::move(steps)) {}

  void append(const StepChain& more) { steps_.insert(steps_.end(), more.steps_.begin(), more.steps_.end()); }
  bool empty() const { return steps_.empty(); }
  const std::vector<ChainedStep>& steps() const { return steps_; }

  /// Pool thread: one record through every step. True if it came out (possibly
  /// rewritten); else it was dropped or failed, and `out` has its position or its
  /// failure. Each step's counts and ticks are added to `out.tally` (sized by the caller
  /// with tally_for()).
  bool run_record(size_t lane, StepRecord& rec, StageOutput& out, std::string& error) const;

  /// Pool thread: runs `records` through every step; the survivors stay in
  /// `records`, in order. The time it took is shared between the steps by their ticks.
  void run(size_t lane, std::vector<StepRecord>& records, StageOutput& out) const;

  /// Sizes `out.tally` for this chain.
  void tally_for(StageOutput& out) const { out.tally.resize(steps_.size()); }

  /// Gives each step its share of `seconds`, a time measured over `all_ticks`
  /// ticks of which the steps' ticks are part; returns the steps' total.
  static double share_busy(std::vector<StepTally>& tally, double seconds, uint64_t all_ticks);

  void append(ChainedStep step) { steps_.push_back(std::move(step)); }

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
  StepChain* step_chain() override { return &chain_; }

 protected:
  void process(size_t lane, Batch& in, StageOutput& out) override;
  void account(const StageOutput& result, size_t in, double busy) override;

 private:
  StepChain chain_;
};

/// A stage of one step (the runner joins neighbouring ones into one chain).
std::unique_ptr<Stage> step_stage(RunContext& run, PartStats& stats, std::shared_ptr<RecordStep> step);

/// Copies the survivors into Records (the only allocation per record that leaves);
/// `rows`: the buffer their rows were written to (a sink's row step), shared by them.
void take_records(std::vector<StepRecord>& records, Batch& out, std::string* rows = nullptr);

}  // namespace aetl
