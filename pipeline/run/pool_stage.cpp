#include "pipeline/run/pool_stage.h"

#include <chrono>

#include "pipeline/blocking_pool.h"
#include "pipeline/checkpoint.h"
#include "pipeline/shutdown.h"

namespace aetl {

asio::awaitable<void> PoolStage::run(BatchChannel& in, BatchChannel& out) {
  for (;;) {
    Batch batch = co_await receive_batch(in);
    if (batch.empty()) break;
    if (run_.stage.control.aborted()) continue;  // drain: nothing unfinished is written
    stats_.in += batch.size();
    stats_.in_flight = batch.size();
    auto result = std::make_shared<StageOutput>();
    auto input = std::make_shared<Batch>(std::move(batch));
    double busy = 0;
    auto job = [this, result, input, &busy]() {
      auto started = std::chrono::steady_clock::now();
      process(*input, *result);
      busy = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    co_await run_blocking(run_.stage.pool.pool(), job);
    stats_.busy_seconds += busy;
    stats_.in_flight = 0;
    ++stats_.batches;
    for (const auto& [pos, n] : result->splits) run_.tracker.split(pos, n);
    for (const auto& pos : result->dropped) run_.tracker.ack(pos);
    stats_.dropped += result->dropped.size();
    stats_.failed += result->failed.size();
    for (auto& f : result->failed) run_.dead_letters.push(std::move(f));
    co_await run_.dead_letters.wait_room();
    stats_.out += result->out.size();
    if (!result->out.empty()) co_await send_batch(out, std::move(result->out));
  }
  co_await send_batch(out, Batch{});
}

}  // namespace aetl
