#include "pipeline/run/pool_stage.h"

#include <chrono>

#include "pipeline/blocking_pool.h"
#include "pipeline/checkpoint.h"
#include "pipeline/run/wakeup.h"
#include "pipeline/shutdown.h"
#include "pipeline/task_group.h"

namespace aetl {

struct PoolStage::Job {
  Batch input;
  size_t count = 0;  // records in `input` (freed on the pool, not on the loop)
  StageOutput output;
  size_t lane = 0;
  bool done = false;
  double busy = 0;
  std::exception_ptr error;
};

PoolStage::PoolStage(RunContext& run, PartStats& stats, size_t lanes)
    : run_(run), stats_(stats), lanes_(lanes == 0 ? 1 : lanes), done_(std::make_unique<Wakeup>(run.stage.io.get_executor())) {
  for (size_t i = lanes_; i-- > 0;) free_lanes_.push_back(i);
}

PoolStage::~PoolStage() = default;

asio::awaitable<void> PoolStage::work(std::shared_ptr<Job> job) {
  auto task = [this, job]() {
    auto started = std::chrono::steady_clock::now();
    try {
      process(job->lane, job->input, job->output);
    } catch (...) {
      job->error = std::current_exception();
    }
    Batch().swap(job->input);  // what the stage dropped is freed here, off the loop thread
    job->busy = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  co_await run_blocking(run_.stage.pool.pool(), task);
  job->done = true;
  done_->notify();
}

asio::awaitable<void> PoolStage::wait_front() {
  while (!window_.front()->done) co_await done_->wait();
}

asio::awaitable<void> PoolStage::emit_front(BatchChannel& out) {
  std::shared_ptr<Job> job = window_.front();
  window_.pop_front();
  free_lanes_.push_back(job->lane);
  stats_.in_flight -= job->count;
  if (job->error) std::rethrow_exception(job->error);
  StageOutput& result = job->output;
  stats_.busy_seconds += job->busy;
  ++stats_.batches;
  for (const auto& [pos, n] : result.splits) run_.tracker.split(pos, n);
  for (const auto& pos : result.dropped) run_.tracker.ack(pos);
  stats_.dropped += result.dropped.size();
  stats_.failed += result.failed.size();
  for (auto& f : result.failed) run_.dead_letters.push(std::move(f));
  co_await run_.dead_letters.wait_room();
  stats_.out += result.out.size();
  if (!result.out.empty()) co_await send_batch(out, std::move(result.out));
}

asio::awaitable<void> PoolStage::run(BatchChannel& in, BatchChannel& out) {
  TaskGroup workers(run_.stage.io.get_executor());
  std::exception_ptr error;
  try {
    for (;;) {
      Batch batch = co_await receive_batch(in);
      if (batch.empty()) break;
      if (run_.stage.control.aborted()) continue;  // drain: nothing unfinished is written
      while (free_lanes_.empty()) {
        co_await wait_front();
        co_await emit_front(out);
      }
      auto job = std::make_shared<Job>();
      job->lane = free_lanes_.back();
      free_lanes_.pop_back();
      stats_.in += batch.size();
      stats_.in_flight += batch.size();
      job->count = batch.size();
      job->input = std::move(batch);
      window_.push_back(job);
      workers.spawn(work(job));
      while (!window_.empty() && window_.front()->done) co_await emit_front(out);
    }
    while (!window_.empty()) {
      co_await wait_front();
      co_await emit_front(out);
    }
  } catch (...) {
    error = std::current_exception();
  }
  co_await workers.wait_all();  // no job outlives the stage
  if (error) std::rethrow_exception(error);
  co_await send_batch(out, Batch{});
}

}  // namespace aetl
