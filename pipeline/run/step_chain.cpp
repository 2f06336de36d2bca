#include "pipeline/run/step_chain.h"

#include <chrono>

namespace aetl {

void StepChain::run(size_t lane, std::vector<StepRecord>& records, StageOutput& out, size_t from) const {
  out.tally.resize(steps_.size());
  std::string error;
  for (size_t s = from; s < steps_.size() && !records.empty(); ++s) {
    auto started = std::chrono::steady_clock::now();
    RecordStep& step = *steps_[s].step;
    StepTally& t = out.tally[s];
    t.in += records.size();
    size_t kept = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      StepRecord& r = records[i];
      switch (step.apply(lane, r, error)) {
        case RecordStep::Verdict::keep:
          if (kept != i) records[kept] = std::move(r);
          ++kept;
          break;
        case RecordStep::Verdict::drop:
          out.dropped.push_back(r.pos);
          ++t.dropped;
          break;
        case RecordStep::Verdict::fail:
          out.failed.push_back({Record{r.take(), r.pos, Outcome::pending, {}}, steps_[s].stats->name, error, 1, false});
          ++t.failed;
          break;
      }
    }
    records.resize(kept);
    t.out += kept;
    t.busy += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
}

void StepChain::account(const std::vector<StepTally>& tally) const {
  for (size_t s = 0; s < steps_.size() && s < tally.size(); ++s) {
    PartStats& p = *steps_[s].stats;
    const StepTally& t = tally[s];
    p.in += t.in;
    p.out += t.out;
    p.dropped += t.dropped;
    p.failed += t.failed;
    p.busy_seconds += t.busy;
    if (t.in) ++p.batches;
  }
}

void take_records(std::vector<StepRecord>& records, Batch& out) {
  out.reserve(out.size() + records.size());
  for (auto& r : records) {
    Record rec;
    rec.data = r.take();
    rec.pos = r.pos;
    out.push_back(std::move(rec));
  }
  records.clear();
}

StepChainStage::StepChainStage(RunContext& run, StepChain chain)
    : PoolStage(run, *chain.steps().front().stats, step_lanes()), chain_(std::move(chain)) {}

void StepChainStage::process(size_t lane, Batch& in, StageOutput& out) {
  std::vector<StepRecord> records;
  records.reserve(in.size());
  for (auto& r : in) records.push_back(StepRecord::from(std::move(r)));
  chain_.run(lane, records, out);
  take_records(records, out.out);
}

std::unique_ptr<Stage> step_stage(RunContext& run, PartStats& stats, std::shared_ptr<RecordStep> step) {
  return std::make_unique<StepChainStage>(run, StepChain({ChainedStep{std::move(step), &stats}}));
}

void StepChainStage::account(const StageOutput& result, size_t, double) { chain_.account(result.tally); }

}  // namespace aetl
