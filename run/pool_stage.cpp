#include "run/pool_stage.h"

#include "run/checkpoint.h"
#include "run/ordered_lanes.h"
#include "engine/shutdown.h"

namespace aetl {

struct PoolStage::Job : OrderedLanes::Job {
  PoolStage* stage = nullptr;
  Batch input;
  size_t count = 0;  // records in `input` (freed on the pool, not on the loop)
  StageOutput output;

  void work(size_t lane) override {
    try {
      stage->process(lane, input, output);
    } catch (...) {
      Batch().swap(input);
      throw;
    }
    Batch().swap(input);  // what the stage dropped is freed here, off the loop thread
  }
};

PoolStage::PoolStage(RunContext& run, PartStats& stats, size_t lanes)
    : run_(run), stats_(stats), lanes_(lanes == 0 ? 1 : lanes) {}

PoolStage::~PoolStage() = default;

void PoolStage::account(const StageOutput& result, size_t in, double busy) {
  stats_.in += in;
  stats_.busy_seconds += busy;
  ++stats_.batches;
  stats_.dropped += result.dropped.size();
  stats_.failed += result.failed.size();
  stats_.out += result.out.size();
}

asio::awaitable<void> PoolStage::run(BatchChannel& in, BatchChannel& out) {
  auto emit = [this, &out](OrderedLanes::Job& done) -> asio::awaitable<void> {
    Job& job = static_cast<Job&>(done);
    stats_.in_flight -= job.count;
    StageOutput& result = job.output;
    account(result, job.count, job.busy);
    for (const auto& [pos, n] : result.splits) run_.tracker.split(pos, n);
    for (const auto& pos : result.dropped) run_.tracker.ack(pos);
    for (auto& f : result.failed) run_.dead_letters.push(std::move(f));
    co_await run_.dead_letters.wait_room();
    if (!result.out.empty()) co_await send_batch(out, std::move(result.out));
  };
  OrderedLanes lanes(run_.stage.io.get_executor(), run_.stage.pool, lanes_, emit);
  std::exception_ptr error;
  try {
    for (;;) {
      // Input pausing (a queue, a pipe, a slow stage before): what the lanes
      // finish goes on as it finishes, oldest first, rather than when the next
      // batch comes; the others keep running meanwhile.
      while (!in.ready() && co_await lanes.emit_next()) {
      }
      Batch batch = co_await receive_batch(in);
      if (batch.empty()) break;
      if (run_.stage.control.aborted()) continue;  // drain: nothing unfinished is written
      auto job = std::make_shared<Job>();
      job->stage = this;
      stats_.in_flight += batch.size();
      job->count = batch.size();
      job->input = std::move(batch);
      co_await lanes.submit(std::move(job));
    }
    co_await lanes.finish();
  } catch (...) {
    error = std::current_exception();
  }
  co_await lanes.wait_idle();  // no job outlives the stage
  if (error) std::rethrow_exception(error);
  co_await send_batch(out, Batch{});
}

}  // namespace aetl
