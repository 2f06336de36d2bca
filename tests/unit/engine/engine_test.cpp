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

/// Records open/write/close (and the listener's commits) in one log.
class RecordingSink : public aetl::Sink {
 public:
  RecordingSink(Strings& log, int fail_at_write = -1) : log_(log), fail_at_(fail_at_write) {}

  asio::awaitable<void> open() override {
    log_.push_back("open");
    co_return;
  }
  asio::awaitable<bool> write(const Batch& batch) override {
    int index = writes++;
    if (index == fail_at_) {
      log_.push_back("refused " + batch.front().data);
      co_return false;
    }
    log_.push_back("write " + batch.front().data);
    for (const auto& r : batch) records.push_back(r.data);
    co_return true;
  }
  asio::awaitable<void> close() override {
    log_.push_back("close");
    co_return;
  }

  Strings records;
  int writes = 0;

 private:
  Strings& log_;
  int fail_at_;
};

class RecordingListener : public aetl::CommitListener {
 public:
  explicit RecordingListener(Strings& log) : log_(log) {}
  asio::awaitable<void> committed(const Batch& batch) override {
    log_.push_back("commit " + batch.front().data);
    co_return;
  }

 private:
  Strings& log_;
};

/// How run_pipeline ended.
struct RunResult {
  bool done = false;
  bool closed_early = false;
  std::exception_ptr error;
};

void start_pipeline(aetl::StageContext& ctx, aetl::Source& source, const std::vector<aetl::Stage*>& stages,
                    aetl::Sink& sink, aetl::CommitListener* listener, size_t capacity, RunResult& outcome) {
  asio::co_spawn(ctx.io, aetl::run_pipeline(ctx, source, stages, sink, listener, capacity),
                 [&outcome](std::exception_ptr e, bool closed_early) {
                   outcome.done = true;
                   outcome.closed_early = closed_early;
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

TEST_CASE("all records pass through the pipeline in order and each batch is written before it is committed",
          "[engine]") {
  asio::io_context io;
  aetl::BlockingPool pool(1);
  RunControl control(io.get_executor());
  aetl::StageContext ctx{io, pool, control, {}};

  FakeSource source(6, 3);
  PassThrough first, second;
  std::vector<aetl::Stage*> stages{&first, &second};
  Strings log;
  RecordingSink sink(log);
  RecordingListener listener(log);
  RunResult outcome;
  start_pipeline(ctx, source, stages, sink, &listener, 2, outcome);
  settle(io);
  REQUIRE(outcome.done);

  CHECK_FALSE(outcome.error);
  CHECK_FALSE(outcome.closed_early);
  CHECK(sink.records == numbers(0, 18));
  Strings expected{"open"};
  for (size_t i = 0; i < 6; ++i) {
    expected.push_back("write " + std::to_string(3 * i));
    expected.push_back("commit " + std::to_string(3 * i));
  }
  expected.push_back("close");
  CHECK(log == expected);
  CHECK_FALSE(control.stopping());
  CHECK_FALSE(control.aborted());
  CHECK(source.end_sent);
}

TEST_CASE("a pipeline without stages runs the source straight into the sink", "[engine]") {
  asio::io_context io;
  aetl::BlockingPool pool(1);
  RunControl control(io.get_executor());
  aetl::StageContext ctx{io, pool, control, {}};

  FakeSource source(3, 2);
  std::vector<aetl::Stage*> stages;
  Strings log;
  RecordingSink sink(log);
  RunResult outcome;
  start_pipeline(ctx, source, stages, sink, nullptr, 1, outcome);
  settle(io);
  REQUIRE(outcome.done);

  CHECK_FALSE(outcome.error);
  CHECK(sink.records == numbers(0, 6));
  CHECK(log == Strings{"open", "write 0", "write 2", "write 4", "close"});
}

TEST_CASE("a sink that refuses a batch stops the run quietly and the rest is drained unwritten", "[engine]") {
  asio::io_context io;
  aetl::BlockingPool pool(1);
  RunControl control(io.get_executor());
  aetl::StageContext ctx{io, pool, control, {}};

  FakeSource source(8, 2);  // does not look at the control: everything it sends must be drained
  PassThrough stage;
  std::vector<aetl::Stage*> stages{&stage};
  Strings log;
  RecordingSink sink(log, 1);  // the second write returns false
  RecordingListener listener(log);
  RunResult outcome;
  start_pipeline(ctx, source, stages, sink, &listener, 1, outcome);
  settle(io);
  REQUIRE(outcome.done);

  CHECK_FALSE(outcome.error);
  CHECK(outcome.closed_early);
  CHECK(control.stopping());
  CHECK(control.reason() == StopReason::downstream_closed);
  CHECK(log == Strings{"open", "write 0", "commit 0", "refused 2", "close"});
  CHECK(sink.writes == 2);  // nothing after the refusal reached the sink
  CHECK(sink.records == numbers(0, 2));
  CHECK(source.sent == 8);  // the source was not left blocked: the rest was drained
  CHECK(source.end_sent);
}

TEST_CASE("a stage that throws aborts the run and its exception comes out of run_pipeline",
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
  RecordingSink sink(log);
  RunResult outcome;
  start_pipeline(ctx, source, stages, sink, nullptr, capacity, outcome);

  // The source is stuck on a full channel when the stage throws; cancelling and
  // closing the channels must release it, or the run never ends.
  settle(io);
  bool ended = outcome.done;
  CHECK(ended);
  CHECK(control.aborted());
  CHECK(aborts == 1);
  CHECK(source.attempted == capacity + 2);
  CHECK_FALSE(source.end_sent);
  CHECK(sink.records.empty());

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
  RecordingSink sink(log);
  RunResult outcome;
  start_pipeline(ctx, source, stages, sink, nullptr, 8, outcome);
  settle(io);
  REQUIRE(outcome.done);

  REQUIRE(outcome.error);
  CHECK(error_message(outcome.error) == "stage failed");
  CHECK(control.aborted());
  CHECK(sink.records.empty());
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
