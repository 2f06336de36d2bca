#include "run/ordered_lanes.h"

#include <chrono>

#include "engine/blocking_pool.h"

namespace aetl {

OrderedLanes::OrderedLanes(asio::any_io_executor ex, BlockingPool& pool, size_t lanes, Emit emit)
    : pool_(pool), lanes_(lanes == 0 ? 1 : lanes), emit_(std::move(emit)), done_(ex), running_(ex) {
  for (size_t i = lanes_; i-- > 0;) free_lanes_.push_back(i);
}

OrderedLanes::~OrderedLanes() = default;

asio::awaitable<void> OrderedLanes::run_job(std::shared_ptr<Job> job) {
  auto task = [job]() {
    auto started = std::chrono::steady_clock::now();
    try {
      job->work(job->lane);
    } catch (...) {
      job->error = std::current_exception();
    }
    job->busy = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  co_await run_blocking(pool_.pool(), task);
  job->done = true;
  done_.notify();
}

asio::awaitable<void> OrderedLanes::emit_front() {
  std::shared_ptr<Job> job = window_.front();
  window_.pop_front();
  free_lanes_.push_back(job->lane);
  if (job->error) std::rethrow_exception(job->error);
  co_await emit_(*job);
}

asio::awaitable<void> OrderedLanes::submit(std::shared_ptr<Job> job) {
  while (free_lanes_.empty()) {
    while (!window_.front()->done) co_await done_.wait();
    co_await emit_front();
  }
  job->lane = free_lanes_.back();
  free_lanes_.pop_back();
  window_.push_back(job);
  running_.spawn(run_job(std::move(job)));
  co_await emit_ready();
}

asio::awaitable<void> OrderedLanes::emit_ready() {
  while (!window_.empty() && window_.front()->done) co_await emit_front();
}

asio::awaitable<void> OrderedLanes::finish() {
  while (!window_.empty()) {
    while (!window_.front()->done) co_await done_.wait();
    co_await emit_front();
  }
}

asio::awaitable<bool> OrderedLanes::emit_next() {
  if (window_.empty()) co_return false;
  while (!window_.front()->done) co_await done_.wait();
  co_await emit_front();
  co_return true;
}

asio::awaitable<void> OrderedLanes::wait_idle() { co_await running_.wait_all(); }

}  // namespace aetl
