#include "run/step_chain.h"

#include <chrono>

#include "run/cpu_ticks.h"

namespace aetl {

namespace {
// One record in this many is timed (its steps' ticks counted this many times):
// reading the clock around every step of every record cost more than some steps.
constexpr uint64_t kTickSample = 8;
}  // namespace

bool StepChain::run_record(size_t lane, StepRecord& r, StageOutput& out, std::string& error) const {
  bool timed = out.stepped++ % kTickSample == 0;
  uint64_t started = timed ? cpu_ticks() : 0;
  for (size_t s = 0; s < steps_.size(); ++s) {
    StepTally& t = out.tally[s];
    ++t.in;
    RecordStep::Verdict verdict = steps_[s].step->apply(lane, r, error);
    if (timed) {
      uint64_t now = cpu_ticks();
      t.ticks += (now - started) * kTickSample;
      started = now;
    }
    switch (verdict) {
      case RecordStep::Verdict::keep: ++t.out; break;
      case RecordStep::Verdict::drop:
        out.dropped.push_back(r.pos);
        ++t.dropped;
        return false;
      case RecordStep::Verdict::fail: {
        out.failed.push_back({Record{r.take(), r.pos, Outcome::pending, r.routes, {}, r.part}, steps_[s].stats->name, error, 1, false});
        ++t.failed;
        return false;
      }
    }
  }
  r.parsed = nullptr;
  r.projected = nullptr;  // the values die with the next record
  return true;
}

void StepChain::run(size_t lane, std::vector<StepRecord>& records, StageOutput& out) const {
  tally_for(out);
  auto started = std::chrono::steady_clock::now();
  uint64_t first_tick = cpu_ticks();
  std::string error;
  size_t kept = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!run_record(lane, records[i], out, error)) continue;
    if (kept != i) records[kept] = std::move(records[i]);
    ++kept;
  }
  records.resize(kept);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  share_busy(out.tally, seconds, cpu_ticks() - first_tick);
}

double StepChain::share_busy(std::vector<StepTally>& tally, double seconds, uint64_t all_ticks) {
  double total = 0;
  for (auto& t : tally) {
    t.busy = all_ticks ? seconds * static_cast<double>(t.ticks) / static_cast<double>(all_ticks) : 0;
    total += t.busy;
  }
  return total;
}

void StepChain::account(const std::vector<StepTally>& tally) const {
  for (size_t s = 0; s < steps_.size() && s < tally.size(); ++s) {
    PartStats& p = *steps_[s].stats;
    const StepTally& t = tally[s];
    if (steps_[s].time_only) {
      p.busy_seconds += t.busy;
      continue;
    }
    p.in += t.in;
    p.out += t.out;
    p.dropped += t.dropped;
    p.failed += t.failed;
    p.busy_seconds += t.busy;
    if (t.in) ++p.batches;
  }
}

void take_records(std::vector<StepRecord>& records, Batch& out, std::string* rows) {
  std::shared_ptr<const std::string> shared;
  if (rows && !rows->empty()) shared = std::make_shared<const std::string>(std::move(*rows));
  if (rows) rows->clear();
  out.reserve(out.size() + records.size());
  for (auto& r : records) {
    Record rec;
    rec.data = r.take();
    rec.pos = r.pos;
    rec.part = r.part;
    rec.routes = r.routes;
    if (shared && r.row_size) rec.row = SharedSlice{shared, r.row_at, r.row_size};
    out.push_back(std::move(rec));
  }
  records.clear();
}

StepChainStage::StepChainStage(RunContext& run, StepChain chain)
    : PoolStage(run, *chain.steps().front().stats, step_lanes()), chain_(std::move(chain)) {}

void StepChainStage::process(size_t lane, Batch& in, StageOutput& out) {
  std::vector<StepRecord> records;
  records.reserve(in.size());
  std::string rows;
  for (auto& r : in) {
    records.push_back(StepRecord::from(std::move(r)));
    records.back().rows = &rows;
  }
  chain_.run(lane, records, out);
  take_records(records, out.out, &rows);
}

std::unique_ptr<Stage> step_stage(RunContext& run, PartStats& stats, std::shared_ptr<RecordStep> step) {
  return std::make_unique<StepChainStage>(run, StepChain({ChainedStep{std::move(step), &stats}}));
}

void StepChainStage::account(const StageOutput& result, size_t, double) { chain_.account(result.tally); }

}  // namespace aetl
