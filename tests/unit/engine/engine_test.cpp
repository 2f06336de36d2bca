#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "engine/blocking_pool.h"
#include "engine/channel.h"
#include "engine/engine.h"
#include "engine/shutdown.h"
#include "engine/stage_context.h"
#include "engine/task_group.h"
#include "tests/unit/test_support.h"

using aetl::Batch;
using aetl::BatchChannel;
using aetl::Record;
using aetl::RunControl;
using aetl::StopReason;
using aetl::TaskGroup;
using aetl::test::run_ready;
using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

namespace {

/// Runs every handler that is ready, and those they make ready, until none is:
/// a pipeline of these fakes has no timers, so whatever has not ended by then
/// is stuck for good (deterministic hang detection, no clock involved).
void settle(asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) io.restart();
}

/// Emits `batches` batches of `per_batch` records ("0", "1", ...) and then the end marker.
class FakeSource : public aetl::Source {
 public:
  FakeSource(size_t batches, size_t per_batch) : batches_(batches), per_batch_(per_batch) {}

  asio::awaitable<void> run(BatchChannel& out) override {
    out_ = &out;
    size_t n = 0;
    for (size_t i = 0; i < batches_; ++i) {
      Batch batch;
      for (size_t j = 0; j < per_batch_; ++j) {
        Record r;
        r.data = std::to_string(n);
        r.pos.line = ++n;
        batch.push_back(std::move(r));
      }
      ++attempted;
      co_await aetl::send_batch(out, std::move(batch));
      ++sent;
    }
    co_await aetl::send_batch(out, Batch{});
    end_sent = true;
  }

  BatchChannel* out_ = nullptr;
  size_t attempted = 0;  // sends started
  size_t sent = 0;       // sends completed
  bool end_sent = false;

 private:
  size_t batches_;
  size_t per_batch_;
};

/// Forwards every batch and the end marker unchanged.
class PassThrough : public aetl::Stage {
 public:
  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override {
    for (;;) {
      Batch batch = co_await aetl::receive_batch(in);
      bool end = batch.empty();
      co_await aetl::send_batch(out, std::move(batch));
      if (end) co_return;
    }
  }
};

/// Takes one batch, waits until the source is stuck on a full channel, then throws.
class ThrowingStage : public aetl::Stage {
 public:
  explicit ThrowingStage(asio::io_context& io, const FakeSource& source, size_t capacity)
      : io_(io), source_(source), capacity_(capacity) {}

  asio::awaitable<void> run(BatchChannel& in, BatchChannel&) override {
    Batch first = co_await aetl::receive_batch(in);
    // One batch taken, `capacity_` buffered: the next send has no room and blocks.
    while (source_.attempted < capacity_ + 2) co_await asio::post(io_, asio::use_awaitable);
    throw std::runtime_error("stage failed");
  }

 private:
  asio::io_context& io_;
  const FakeSource& source_;
  size_t capacity_;
};

/// The end of the chain: takes every batch until the end marker, logging each.
struct RecordingDrain {
  Strings& log;
  Strings records;
  asio::awaitable<void> operator()(aetl::BatchChannel& in) {
    for (;;) {
      Batch batch = co_await aetl::receive_batch(in);
      if (batch.empty()) break;
      log.push_back("batch " + batch.front().data);
      for (const auto& r : batch) records.push_back(r.data);
    }
    log.push_back("end");
  }
};

/// How run_chain ended.
struct RunResult {
  bool done = false;
  std::exception_ptr error;
};

void start_chain(aetl::StageContext& ctx, aetl::Source& source, const std::vector<aetl::Stage*>& stages,
                 RecordingDrain& drain, size_t capacity, RunResult& outcome) {
  aetl::Drain d = [&drain](aetl::BatchChannel& in) { return drain(in); };
  asio::co_spawn(ctx.io, aetl::run_chain(ctx, source, stages, d, capacity), [&outcome](std::exception_ptr e) {
    outcome.done = true;
    outcome.error = e;
  });
}

Strings numbers(size_t from, size_t to) {
  Strings out;
  for (size_t i = from; i < to; ++i) out.push_back(std::to_string(i));
  return out;
}

std::string error_message(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "?";
  }
}

/// A task that ends (or throws `message`) once `gate` is cancelled.
asio::awaitable<void> gated_task(asio::steady_timer& gate, std::string message, Strings& log) {
  asio::error_code ec;
  co_await gate.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  log.push_back(message.empty() ? "ended" : message);
  if (!message.empty()) throw std::runtime_error(message);
}

asio::awaitable<void> wait_for_group(TaskGroup& group, bool& done) {
  co_await group.wait_all();
  done = true;
}

}  // namespace

TEST_CASE("all records pass through the chain in order, batch by batch", "[engine]") {
  asio::io_context io;
  aetl::BlockingPool pool(1);
  RunControl control(io.get_executor());
  aetl::StageContext ctx{io, pool, control, {}};

  FakeSource source(6, 3);
  PassThrough first, second;
  std::vector<aetl::Stage*> stages{&first, &second};
  Strings log;
  RecordingDrain drain{log, {}};
  RunResult outcome;
  start_chain(ctx, source, stages, drain, 2, outcome);
  settle(io);
  REQUIRE(outcome.done);

  CHECK_FALSE(outcome.error);
  CHECK(drain.records == numbers(0, 18));
  Strings expected;
  for (size_t i = 0; i < 6; ++i) expected.push_back("batch " + std::to_string(3 * i));
  expected.push_back("end");
  CHECK(log == expected);
  CHECK_FALSE(control.stopping());
  CHECK_FALSE(control.aborted());
  CHECK(source.end_sent);
}

TEST_CASE("a chain without stages runs the source straight into the drain", "[engine]") {
  asio::io_context io;
  aetl::BlockingPool pool(1);
  RunControl control(io.get_executor());
  aetl::StageContext ctx{io, pool, control, {}};

  FakeSource source(3, 2);
  std::vector<aetl::Stage*> stages;
  Strings log;
  RecordingDrain drain{log, {}};
  RunResult outcome;
  start_chain(ctx, source, stages, drain, 1, outcome);
  settle(io);
  REQUIRE(outcome.done);

  CHECK_FALSE(outcome.error);
  CHECK(drain.records == numbers(0, 6));
  CHECK(log == Strings{"batch 0", "batch 2", "batch 4", "end"});
}

TEST_CASE("a stage that throws aborts the run and its exception comes out of run_chain",
          "[engine]") {
  asio::io_context io;
  aetl::BlockingPool pool(1);
  RunControl control(io.get_executor());
  aetl::StageContext ctx{io, pool, control, {}};
  int aborts = 0;
  control.on_abort([&] { ++aborts; });

  const size_t capacity = 1;
  FakeSource source(10, 1);
  ThrowingStage stage(io, source, capacity);
  std::vector<aetl::Stage*> stages{&stage};
  Strings log;
  RecordingDrain drain{log, {}};
  RunResult outcome;
  start_chain(ctx, source, stages, drain, capacity, outcome);

  // The source is stuck on a full channel when the stage throws; cancelling and
  // closing the channels must release it, or the run never ends.
  settle(io);
  bool ended = outcome.done;
  CHECK(ended);
  CHECK(control.aborted());
  CHECK(aborts == 1);
  CHECK(source.attempted == capacity + 2);
  CHECK_FALSE(source.end_sent);
  CHECK(drain.records.empty());

  if (!ended && source.out_) {
    // Release the stuck send by hand so the test can tear down cleanly. With
    // Asio 1.22.1, cancel() on a closed channel completes a stuck send as if it
    // succeeded; the source's next send then fails on the closed channel.
    source.out_->cancel();
    settle(io);
    REQUIRE(outcome.done);
  }
  REQUIRE(outcome.error);
  CHECK(error_message(outcome.error) == "stage failed");
}

TEST_CASE("a stage that throws while the source has room ends the run with its exception", "[engine]") {
  // Same failure, but the source is never blocked in a send when the channels
  // close (capacity is larger than what it emits), so closing is enough.
  asio::io_context io;
  aetl::BlockingPool pool(1);
  RunControl control(io.get_executor());
  aetl::StageContext ctx{io, pool, control, {}};

  FakeSource source(3, 1);
  ThrowingStage stage(io, source, 1);  // waits for all 3 sends to start
  std::vector<aetl::Stage*> stages{&stage};
  Strings log;
  RecordingDrain drain{log, {}};
  RunResult outcome;
  start_chain(ctx, source, stages, drain, 8, outcome);
  settle(io);
  REQUIRE(outcome.done);

  REQUIRE(outcome.error);
  CHECK(error_message(outcome.error) == "stage failed");
  CHECK(control.aborted());
  CHECK(drain.records.empty());
}

TEST_CASE("TaskGroup wait_all returns at once when nothing was spawned", "[engine][task_group]") {
  asio::io_context io;
  TaskGroup group(io.get_executor());
  bool done = false;
  asio::co_spawn(io, wait_for_group(group, done), [](std::exception_ptr) {});
  run_ready(io);
  CHECK(done);
  CHECK(group.active() == 0);
  CHECK_FALSE(group.first_error());
}

TEST_CASE("TaskGroup wait_all returns only after every spawned task has ended", "[engine][task_group]") {
  asio::io_context io;
  TaskGroup group(io.get_executor());
  asio::steady_timer a(io, asio::steady_timer::time_point::max());
  asio::steady_timer b(io, asio::steady_timer::time_point::max());
  asio::steady_timer c(io, asio::steady_timer::time_point::max());
  Strings log;
  group.spawn(gated_task(a, "", log));
  group.spawn(gated_task(b, "", log));
  group.spawn(gated_task(c, "", log));
  bool done = false;
  asio::co_spawn(io, wait_for_group(group, done), [](std::exception_ptr) {});
  run_ready(io);
  CHECK(group.active() == 3);
  CHECK_FALSE(done);

  b.cancel();
  run_ready(io);
  CHECK(group.active() == 2);
  CHECK_FALSE(done);

  a.cancel();
  run_ready(io);
  CHECK(group.active() == 1);
  CHECK_FALSE(done);

  c.cancel();
  run_ready(io);
  CHECK(group.active() == 0);
  CHECK(done);
  CHECK(log.size() == 3);
  CHECK_FALSE(group.first_error());
}

TEST_CASE("TaskGroup first_error holds the first exception and wait_all still waits for the rest",
          "[engine][task_group]") {
  asio::io_context io;
  TaskGroup group(io.get_executor());
  asio::steady_timer a(io, asio::steady_timer::time_point::max());
  asio::steady_timer b(io, asio::steady_timer::time_point::max());
  asio::steady_timer c(io, asio::steady_timer::time_point::max());
  Strings log;
  group.spawn(gated_task(a, "first", log));
  group.spawn(gated_task(b, "second", log));
  group.spawn(gated_task(c, "", log));
  bool done = false;
  asio::co_spawn(io, wait_for_group(group, done), [](std::exception_ptr) {});
  run_ready(io);

  b.cancel();
  run_ready(io);
  REQUIRE(group.first_error());
  CHECK(error_message(group.first_error()) == "second");
  CHECK_FALSE(done);

  a.cancel();
  run_ready(io);
  CHECK(error_message(group.first_error()) == "second");  // the first one stays
  CHECK_FALSE(done);

  c.cancel();
  run_ready(io);
  CHECK(done);
  CHECK(log == Strings{"second", "first", "ended"});
}
