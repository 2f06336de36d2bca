#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

#include "engine/keyed_limiter.h"
#include "tests/unit/test_support.h"

using aetl::KeyedLimiter;
using aetl::test::run_ready;
using Log = std::vector<std::string>;

namespace {

/// Acquires KEY (and keeps it), logging NAME, or "NAME aborted" when cancelled.
asio::awaitable<void> holder(KeyedLimiter& limiter, std::string key, std::string name, Log& log) {
  try {
    co_await limiter.acquire(key);
    log.push_back(name);
  } catch (const asio::system_error& e) {
    log.push_back(name + (e.code() == asio::error::operation_aborted ? " aborted" : " error"));
  }
}

void spawn(asio::io_context& io, KeyedLimiter& limiter, std::string key, std::string name, Log& log) {
  asio::co_spawn(io, holder(limiter, std::move(key), std::move(name), log), asio::detached);
}

}  // namespace

TEST_CASE("at most `limit` holders share one key; the next waits for a release", "[keyed_limiter]") {
  asio::io_context io;
  KeyedLimiter limiter(io.get_executor(), 2);
  Log log;
  for (const char* name : {"A", "B", "C", "D"}) spawn(io, limiter, "example.com:443", name, log);
  run_ready(io);
  CHECK(log == Log{"A", "B"});
  CHECK(limiter.keys_in_use() == 1);

  limiter.release("example.com:443");
  run_ready(io);
  CHECK(log == Log{"A", "B", "C"});
  limiter.release("example.com:443");
  run_ready(io);
  CHECK(log == Log{"A", "B", "C", "D"});
}

TEST_CASE("different keys do not wait for each other", "[keyed_limiter]") {
  asio::io_context io;
  KeyedLimiter limiter(io.get_executor(), 1);
  Log log;
  spawn(io, limiter, "a:80", "A1", log);
  spawn(io, limiter, "a:80", "A2", log);
  spawn(io, limiter, "b:80", "B1", log);
  spawn(io, limiter, "c:80", "C1", log);
  run_ready(io);
  CHECK(log == Log{"A1", "B1", "C1"});
  CHECK(limiter.keys_in_use() == 3);

  limiter.release("b:80");  // frees b only; A2 keeps waiting on a
  run_ready(io);
  CHECK(log == Log{"A1", "B1", "C1"});
  CHECK(limiter.keys_in_use() == 2);

  limiter.release("a:80");
  run_ready(io);
  CHECK(log == Log{"A1", "B1", "C1", "A2"});
}

TEST_CASE("a key is forgotten once its last holder releases it", "[keyed_limiter]") {
  asio::io_context io;
  KeyedLimiter limiter(io.get_executor(), 1);
  Log log;
  spawn(io, limiter, "k", "A", log);
  spawn(io, limiter, "k", "B", log);  // waits
  run_ready(io);
  CHECK(limiter.keys_in_use() == 1);

  limiter.release("k");  // A leaves, B (a waiter) still uses the key
  run_ready(io);
  CHECK(log == Log{"A", "B"});
  CHECK(limiter.keys_in_use() == 1);

  limiter.release("k");
  CHECK(limiter.keys_in_use() == 0);
}

TEST_CASE("many keys used once each leave no entries behind", "[keyed_limiter]") {
  asio::io_context io;
  KeyedLimiter limiter(io.get_executor(), 3);
  Log log;
  for (int i = 0; i < 500; ++i) spawn(io, limiter, "host" + std::to_string(i), "h", log);
  run_ready(io);
  CHECK(log.size() == 500);
  CHECK(limiter.keys_in_use() == 500);
  for (int i = 0; i < 500; ++i) limiter.release("host" + std::to_string(i));
  CHECK(limiter.keys_in_use() == 0);
}

TEST_CASE("a cancelled waiter leaves no key entry behind", "[keyed_limiter][cancel]") {
  asio::io_context io;
  KeyedLimiter limiter(io.get_executor(), 1);
  Log log;
  spawn(io, limiter, "k", "A", log);
  asio::cancellation_signal sig;
  asio::co_spawn(io, holder(limiter, "k", "B", log), asio::bind_cancellation_slot(sig.slot(), asio::detached));
  run_ready(io);
  CHECK(log == Log{"A"});

  sig.emit(asio::cancellation_type::terminal);
  run_ready(io);
  CHECK(log == Log{"A", "B aborted"});
  CHECK(limiter.keys_in_use() == 1);  // A still holds it

  limiter.release("k");
  CHECK(limiter.keys_in_use() == 0);

  // The key works again from scratch.
  spawn(io, limiter, "k", "C", log);
  run_ready(io);
  CHECK(log.back() == "C");
  CHECK(limiter.keys_in_use() == 1);
}

TEST_CASE("a cancelled only waiter of a key that is then released leaves nothing behind", "[keyed_limiter][cancel]") {
  asio::io_context io;
  KeyedLimiter limiter(io.get_executor(), 1);
  Log log;
  spawn(io, limiter, "k", "A", log);
  asio::cancellation_signal sig;
  asio::co_spawn(io, holder(limiter, "k", "B", log), asio::bind_cancellation_slot(sig.slot(), asio::detached));
  run_ready(io);

  asio::post(io, [&] {  // one handler, as in a real run: the cancellation reaches B at once
    limiter.release("k");                          // hands the permit to B ...
    sig.emit(asio::cancellation_type::terminal);   // ... which is cancelled before it runs
  });
  run_ready(io);
  CHECK(log == Log{"A", "B aborted"});
  CHECK(limiter.keys_in_use() == 0);
}

TEST_CASE("a limit of 0 means unlimited and keeps no keys", "[keyed_limiter]") {
  asio::io_context io;
  KeyedLimiter limiter(io.get_executor(), 0);
  Log log;
  for (int i = 0; i < 100; ++i) spawn(io, limiter, "same", "x", log);
  run_ready(io);
  CHECK(log.size() == 100);
  CHECK(limiter.keys_in_use() == 0);
  limiter.release("same");  // a no-op
  CHECK(limiter.keys_in_use() == 0);
}

TEST_CASE("releasing a key nobody holds is harmless", "[keyed_limiter]") {
  asio::io_context io;
  KeyedLimiter limiter(io.get_executor(), 1);
  limiter.release("never-acquired");
  CHECK(limiter.keys_in_use() == 0);
  Log log;
  spawn(io, limiter, "k", "A", log);
  run_ready(io);
  CHECK(log == Log{"A"});
}
