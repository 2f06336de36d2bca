#pragma once
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/wakeup.h"
#include "engine/task_group.h"

namespace aetl {

class BlockingPool;

/// Runs jobs on the blocking pool, up to `lanes` at once, each on a lane of its
/// own (a lane's scratch state is never shared by two running jobs), and hands
/// the finished jobs on in the order they were submitted. The loop thread only
/// submits and hands on.
class OrderedLanes {
 public:
  struct Job {
    virtual ~Job() = default;
    /// Pool thread. An exception is kept and rethrown when the job is handed on.
    virtual void work(size_t lane) = 0;
    size_t lane = 0;
    double busy = 0;  ///< seconds work() took
    bool done = false;
    std::exception_ptr error;
  };
  using Emit = std::function<asio::awaitable<void>(Job&)>;

  OrderedLanes(asio::any_io_executor ex, BlockingPool& pool, size_t lanes, Emit emit);
  ~OrderedLanes();

  /// Starts `job` once a lane is free, handing finished jobs on meanwhile.
  asio::awaitable<void> submit(std::shared_ptr<Job> job);
  /// Hands on the finished jobs at the front without waiting for others.
  asio::awaitable<void> emit_ready();
  /// Waits for every job and hands each on.
  asio::awaitable<void> finish();
  /// Waits for the oldest job and hands it on; false when no job is left.
  asio::awaitable<bool> emit_next();
  /// Waits until no job runs any more (after an error: nothing is handed on).
  asio::awaitable<void> wait_idle();
  size_t lanes() const { return lanes_; }

 private:
  asio::awaitable<void> run_job(std::shared_ptr<Job> job);
  asio::awaitable<void> emit_front();

  BlockingPool& pool_;
  size_t lanes_;
  Emit emit_;
  std::deque<std::shared_ptr<Job>> window_;
  std::vector<size_t> free_lanes_;
  Wakeup done_;
  TaskGroup running_;
};

}  // namespace aetl
