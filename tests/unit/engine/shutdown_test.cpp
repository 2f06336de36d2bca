#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <exception>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"

#include "engine/shutdown.h"
#include "tests/unit/test_support.h"

using aetl::RunControl;
using aetl::StopReason;
using aetl::test::run_ready;
using aetl::test::run_until;
using namespace std::chrono_literals;

namespace {

/// Runs the loop until it has no work left; false if it still had some after
/// `limit` (something was left waiting).
bool runs_out_of_work(asio::io_context& io, std::chrono::milliseconds limit = 5000ms) {
  io.restart();
  io.run_for(limit);
  return io.stopped();
}

/// Raises SIGINT from inside the loop (where the run's signal handling lives).
void raise_in_loop(asio::io_context& io) {
  asio::post(io, [] { std::raise(SIGINT); });
}

void spawn_wait_abort(asio::io_context& io, RunControl& control, bool& done) {
  asio::co_spawn(io, control.wait_abort(), [&done](std::exception_ptr) { done = true; });
}

}  // namespace

TEST_CASE("a fresh run control is neither stopping nor aborted", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  CHECK_FALSE(control.stopping());
  CHECK_FALSE(control.aborted());
  CHECK(control.reason() == StopReason::none);
}

TEST_CASE("request_stop sets stopping with its reason and runs the stop hooks once", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  int stops = 0, aborts = 0;
  control.on_stop([&] { ++stops; });
  control.on_stop([&] { ++stops; });
  control.on_abort([&] { ++aborts; });

  control.request_stop(StopReason::downstream_closed);
  CHECK(control.stopping());
  CHECK_FALSE(control.aborted());
  CHECK(control.reason() == StopReason::downstream_closed);
  CHECK(stops == 2);

  control.request_stop(StopReason::signal);
  CHECK(stops == 2);
  CHECK(control.reason() == StopReason::downstream_closed);  // the first reason stays
  CHECK(aborts == 0);
}

TEST_CASE("request_abort also stops the run and runs the abort hooks once", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  int stops = 0, aborts = 0;
  control.on_stop([&] { ++stops; });
  control.on_abort([&] { ++aborts; });

  control.request_abort();
  CHECK(control.stopping());
  CHECK(control.aborted());
  CHECK(control.reason() == StopReason::error);
  CHECK(stops == 1);
  CHECK(aborts == 1);

  control.request_abort();
  control.request_stop(StopReason::signal);
  CHECK(stops == 1);
  CHECK(aborts == 1);
}

TEST_CASE("request_abort after a stop keeps the reason of the stop", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  control.request_stop(StopReason::downstream_closed);
  control.request_abort();
  CHECK(control.aborted());
  CHECK(control.reason() == StopReason::downstream_closed);
}

TEST_CASE("wait_abort completes when the run aborts", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  bool done = false;
  spawn_wait_abort(io, control, done);
  run_ready(io);
  CHECK_FALSE(done);

  control.request_stop(StopReason::signal);
  run_ready(io);
  CHECK_FALSE(done);  // a stop is not an abort

  control.request_abort();
  run_ready(io);
  CHECK(done);
}

TEST_CASE("wait_abort returns at once after the run aborted", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  control.request_abort();
  bool done = false;
  spawn_wait_abort(io, control, done);
  run_ready(io);
  CHECK(done);
}

TEST_CASE("a deadline stops and aborts the run with reason deadline", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  int stops = 0, aborts = 0;
  control.on_stop([&] { ++stops; });
  control.on_abort([&] { ++aborts; });
  bool waiter_done = false;
  spawn_wait_abort(io, control, waiter_done);

  control.set_deadline(20ms);
  io.run();
  CHECK(control.stopping());
  CHECK(control.aborted());
  CHECK(control.reason() == StopReason::deadline);
  CHECK(stops == 1);
  CHECK(aborts == 1);
  CHECK(waiter_done);
  control.finish();
}

TEST_CASE("finish cancels the deadline so a finished run is not aborted later", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  control.set_deadline(20ms);
  control.finish();
  // Keep the loop busy well past the deadline.
  asio::steady_timer later(io, 100ms);
  bool later_fired = false;
  later.async_wait([&](const asio::error_code&) { later_fired = true; });
  io.run();
  CHECK(later_fired);
  CHECK_FALSE(control.stopping());
  CHECK_FALSE(control.aborted());
  CHECK(control.reason() == StopReason::none);
}

TEST_CASE("finish stops watching signals so the loop can run out of work", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  control.watch_signals(1000ms);
  control.set_deadline(std::chrono::hours(1));
  control.finish();
  REQUIRE(runs_out_of_work(io));
  CHECK_FALSE(control.stopping());
}

TEST_CASE("a first SIGINT stops the run with reason signal but does not abort it yet", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  int aborts = 0;
  control.on_abort([&] { ++aborts; });
  control.watch_signals(std::chrono::hours(1));

  raise_in_loop(io);
  REQUIRE(run_until(io, [&] { return control.stopping(); }));
  run_ready(io);
  CHECK(control.reason() == StopReason::signal);
  CHECK_FALSE(control.aborted());
  CHECK(aborts == 0);

  control.finish();
  run_ready(io);
}

TEST_CASE("after a SIGINT the run aborts once the grace period is over", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  int stops = 0, aborts = 0;
  control.on_stop([&] { ++stops; });
  control.on_abort([&] { ++aborts; });
  control.watch_signals(20ms);

  raise_in_loop(io);
  REQUIRE(run_until(io, [&] { return control.stopping(); }));
  CHECK(control.reason() == StopReason::signal);
  REQUIRE(run_until(io, [&] { return control.aborted(); }));
  CHECK(control.reason() == StopReason::signal);
  CHECK(stops == 1);
  CHECK(aborts == 1);

  control.finish();
  REQUIRE(runs_out_of_work(io));
}

TEST_CASE("a second SIGINT aborts the run at once", "[shutdown]") {
  asio::io_context io;
  RunControl control(io.get_executor());
  int aborts = 0;
  control.on_abort([&] { ++aborts; });
  bool waiter_done = false;
  spawn_wait_abort(io, control, waiter_done);
  control.watch_signals(std::chrono::hours(1));

  raise_in_loop(io);
  REQUIRE(run_until(io, [&] { return control.stopping(); }));
  run_ready(io);
  CHECK_FALSE(control.aborted());

  raise_in_loop(io);
  REQUIRE(run_until(io, [&] { return control.aborted(); }));
  run_ready(io);
  CHECK(control.reason() == StopReason::signal);
  CHECK(aborts == 1);
  CHECK(waiter_done);

  control.finish();
  // The grace timer (an hour) was cancelled by the abort: nothing is left to wait for.
  REQUIRE(runs_out_of_work(io));
}
