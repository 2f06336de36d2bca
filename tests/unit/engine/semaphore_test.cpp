#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "engine/semaphore.h"
#include "tests/unit/test_support.h"

using aetl::AsyncSemaphore;
using aetl::test::run_ready;
using Log = std::vector<std::string>;

namespace {

/// Acquires a permit (and keeps it), logging NAME, or "NAME aborted" when cancelled.
asio::awaitable<void> waiter(AsyncSemaphore& sem, std::string name, Log& log) {
  try {
    co_await sem.acquire();
    log.push_back(name);
  } catch (const asio::system_error& e) {
    log.push_back(name + (e.code() == asio::error::operation_aborted ? " aborted" : " error"));
  }
}

/// Runs `fn` as one handler on the loop, as the events of a real run happen: a
/// cancellation emitted there reaches the coroutine at once (Boost.Asio hands a
/// co_spawn'ed coroutine a cancellation from outside its executor later, by post).
void in_one_handler(asio::io_context& io, std::function<void()> fn) { asio::post(io, std::move(fn)); }

void spawn(asio::io_context& io, AsyncSemaphore& sem, std::string name, Log& log) {
  asio::co_spawn(io, waiter(sem, std::move(name), log), asio::detached);
}

void spawn(asio::io_context& io, AsyncSemaphore& sem, std::string name, Log& log, asio::cancellation_signal& sig) {
  asio::co_spawn(io, waiter(sem, std::move(name), log), asio::bind_cancellation_slot(sig.slot(), asio::detached));
}

}  // namespace

TEST_CASE("try_acquire takes free permits until none are left", "[semaphore]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 2);
  CHECK(sem.permits() == 2);
  CHECK(sem.in_use() == 0);
  CHECK(sem.try_acquire());
  CHECK(sem.in_use() == 1);
  CHECK(sem.try_acquire());
  CHECK(sem.in_use() == 2);
  CHECK_FALSE(sem.try_acquire());
  CHECK(sem.in_use() == 2);
  sem.release();
  CHECK(sem.in_use() == 1);
  CHECK(sem.try_acquire());
  sem.release(2);
  CHECK(sem.in_use() == 0);
}

TEST_CASE("acquire completes without waiting while a permit is free", "[semaphore]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 2);
  Log log;
  spawn(io, sem, "A", log);
  spawn(io, sem, "B", log);
  run_ready(io);
  CHECK(log == Log{"A", "B"});
  CHECK(sem.in_use() == 2);
}

TEST_CASE("a waiter is woken in FIFO order when a permit is released", "[semaphore]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 1);
  REQUIRE(sem.try_acquire());
  Log log;
  for (const char* name : {"A", "B", "C", "D"}) spawn(io, sem, name, log);
  run_ready(io);
  CHECK(log.empty());
  CHECK(sem.in_use() == 1);

  for (const char* expected : {"A", "B", "C", "D"}) {
    sem.release();
    run_ready(io);
    REQUIRE_FALSE(log.empty());
    CHECK(log.back() == expected);
    CHECK(sem.in_use() == 1);
  }
  CHECK(log == Log{"A", "B", "C", "D"});
}

TEST_CASE("try_acquire does not overtake a queued waiter", "[semaphore]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 1);
  REQUIRE(sem.try_acquire());
  Log log;
  spawn(io, sem, "A", log);
  run_ready(io);
  sem.release();  // the permit is A's, although A has not run yet
  CHECK_FALSE(sem.try_acquire());
  run_ready(io);
  CHECK(log == Log{"A"});
  CHECK(sem.in_use() == 1);
}

TEST_CASE("release(n) wakes n waiters and leaves the rest waiting", "[semaphore]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 3);
  for (int i = 0; i < 3; ++i) REQUIRE(sem.try_acquire());
  Log log;
  for (const char* name : {"A", "B", "C"}) spawn(io, sem, name, log);
  run_ready(io);
  sem.release(2);
  run_ready(io);
  CHECK(log == Log{"A", "B"});
  CHECK(sem.in_use() == 3);
  sem.release();
  run_ready(io);
  CHECK(log == Log{"A", "B", "C"});
}

TEST_CASE("releasing more permits than there are waiters keeps the surplus free", "[semaphore]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 3);
  for (int i = 0; i < 3; ++i) REQUIRE(sem.try_acquire());
  Log log;
  spawn(io, sem, "A", log);
  run_ready(io);
  sem.release(3);
  run_ready(io);
  CHECK(log == Log{"A"});
  CHECK(sem.in_use() == 1);
  CHECK(sem.try_acquire());
  CHECK(sem.try_acquire());
  CHECK_FALSE(sem.try_acquire());
}

TEST_CASE("a cancelled waiter takes no permit and the next waiter gets the released one", "[semaphore][cancel]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 1);
  REQUIRE(sem.try_acquire());
  Log log;
  asio::cancellation_signal sig_a;
  spawn(io, sem, "A", log, sig_a);
  spawn(io, sem, "B", log);
  run_ready(io);
  REQUIRE(log.empty());

  sig_a.emit(asio::cancellation_type::terminal);
  run_ready(io);
  CHECK(log == Log{"A aborted"});
  CHECK(sem.in_use() == 1);  // still only the test's own permit

  sem.release();
  run_ready(io);
  CHECK(log == Log{"A aborted", "B"});
  CHECK(sem.in_use() == 1);
}

TEST_CASE("a waiter cancelled after a permit was handed to it passes the wake-up on", "[semaphore][cancel]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 1);
  REQUIRE(sem.try_acquire());
  Log log;
  asio::cancellation_signal sig_a;
  spawn(io, sem, "A", log, sig_a);
  spawn(io, sem, "B", log);
  run_ready(io);

  in_one_handler(io, [&] {
    sem.release();                                   // wakes A ...
    sig_a.emit(asio::cancellation_type::terminal);   // ... which is cancelled before it runs
  });
  run_ready(io);
  CHECK(log == Log{"A aborted", "B"});
  CHECK(sem.in_use() == 1);
}

TEST_CASE("the only waiter cancelled after being woken leaves the permit free", "[semaphore][cancel]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 1);
  REQUIRE(sem.try_acquire());
  Log log;
  asio::cancellation_signal sig_a;
  spawn(io, sem, "A", log, sig_a);
  run_ready(io);
  in_one_handler(io, [&] {
    sem.release();
    sig_a.emit(asio::cancellation_type::terminal);
  });
  run_ready(io);
  CHECK(log == Log{"A aborted"});
  CHECK(sem.in_use() == 0);
  CHECK(sem.try_acquire());
}

TEST_CASE("a waiter cancelled while a permit is released keeps the others in FIFO order",
          "[semaphore][cancel]") {
  // B is cancelled, then a permit is released (handed to A) before either runs.
  // B sees a free permit and passes "its" wake-up on to C although it never had
  // one; C finds no permit, and re-queues *behind* D.
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 1);
  REQUIRE(sem.try_acquire());
  Log log;
  asio::cancellation_signal sig_b;
  spawn(io, sem, "A", log);
  spawn(io, sem, "B", log, sig_b);
  spawn(io, sem, "C", log);
  spawn(io, sem, "D", log);
  run_ready(io);

  in_one_handler(io, [&] {
    sig_b.emit(asio::cancellation_type::terminal);
    sem.release();
  });
  run_ready(io);
  CHECK(log == Log{"B aborted", "A"});

  sem.release();  // A is done
  run_ready(io);
  sem.release();  // the next one is done
  run_ready(io);
  CHECK(log == Log{"B aborted", "A", "C", "D"});
}

namespace {

using namespace asio::experimental::awaitable_operators;

/// Races acquire() against a timer that has already expired; records which won.
asio::awaitable<void> race_expired_timer(AsyncSemaphore& sem, Log& log) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(std::chrono::seconds(0));
  auto winner = co_await (sem.acquire() || timer.async_wait(asio::use_awaitable));
  log.push_back(winner.index() == 0 ? "acquired" : "timer");
}

}  // namespace

TEST_CASE("acquire raced against an expired timer with || takes no permit and loses no wake-up",
          "[semaphore][cancel]") {
  asio::io_context io;
  AsyncSemaphore sem(io.get_executor(), 1);
  REQUIRE(sem.try_acquire());
  Log log;
  asio::co_spawn(io, race_expired_timer(sem, log), asio::detached);
  io.run();  // the timer wins; acquire() is cancelled
  CHECK(log == Log{"timer"});
  CHECK(sem.in_use() == 1);

  // The cancelled acquire left no waiter behind: a release and try_acquire work,
  // and a new waiter is woken by the next release.
  spawn(io, sem, "B", log);
  run_ready(io);
  CHECK(log == Log{"timer"});
  sem.release();
  run_ready(io);
  CHECK(log == Log{"timer", "B"});
  CHECK(sem.in_use() == 1);
  sem.release();
  CHECK(sem.try_acquire());
}
