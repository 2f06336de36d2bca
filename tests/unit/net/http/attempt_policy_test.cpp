#include <catch2/catch.hpp>

#include <curl/curl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "engine/shutdown.h"
#include "net/http/attempt_policy.h"
#include "tests/unit/stages/fetch/fake_transport.h"
#include "tests/unit/test_support.h"

using namespace aetl;
using namespace std::chrono_literals;
using aetl::test::FakeTransport;
using aetl::test::run_ready;
using aetl::test::run_until;
using aetl::test::status;
using aetl::test::transport_error;

namespace {

/// A policy on a fake transport whose waits between attempts are only recorded
/// (a fake clock: the delays chosen are checked, none is slept).
struct Rig : AttemptObserver {
  asio::io_context io;
  RunControl control{io.get_executor()};
  FakeTransport transport{io};
  std::optional<AttemptPolicy> policy;
  std::vector<std::chrono::milliseconds> waits;
  int started = 0, ended = 0, retries = 0;

  explicit Rig(AttemptLimits limits = {}, bool fake_clock = true) {
    policy.emplace(io.get_executor(), control, transport, limits);
    policy->set_observer(this);
    policy->seed(11);
    if (fake_clock)
      policy->set_sleep([this](std::chrono::milliseconds d) -> asio::awaitable<void> {
        waits.push_back(d);
        co_await asio::post(io, asio::use_awaitable);
      });
  }
  ~Rig() override { control.finish(); }

  void attempt_started() override { ++started; }
  void attempt_ended(const HttpResponse&) override { ++ended; }
  void retry_waiting(std::chrono::milliseconds) override { ++retries; }

  /// Starts one request; its result lands in `out` when done.
  void start(const std::string& url, std::optional<Attempted>& out) {
    auto req = std::make_shared<HttpRequest>();
    req->url = url;
    asio::co_spawn(
        io,
        [this, req, &out]() -> asio::awaitable<void> {
          out = co_await policy->perform(*req, FakeTransport::host_of(req->url), nullptr);
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }

  Attempted fetch(const std::string& url) {
    std::optional<Attempted> out;
    start(url, out);
    REQUIRE(run_until(io, [&] { return out.has_value(); }));
    return *out;
  }
};

AttemptLimits limits(int max_retries, std::chrono::milliseconds min, std::chrono::milliseconds max) {
  AttemptLimits l;
  l.retry = RetryPolicy{max_retries, min, max};
  return l;
}

}  // namespace

TEST_CASE("a 503 then a 200 takes two attempts and one jittered backoff", "[attempt_policy]") {
  Rig rig(limits(2, 100ms, 1s));
  rig.transport.script["http://a/x"] = {status(503)};
  Attempted a = rig.fetch("http://a/x");
  CHECK(a.attempts == 2);
  CHECK(a.response.status == 200);
  CHECK_FALSE(a.dropped);
  CHECK(attempt_error(a).empty());
  REQUIRE(rig.waits.size() == 1);
  CHECK(rig.waits[0] <= 100ms);  // full jitter: uniform in [0, min_backoff] before the first retry
  CHECK(rig.started == 2);
  CHECK(rig.ended == 2);
  CHECK(rig.retries == 1);
}

TEST_CASE("Retry-After longer than the backoff is waited for in full", "[attempt_policy]") {
  Rig rig(limits(2, 100ms, 30s));
  rig.transport.script["http://a/x"] = {status(503, 3)};
  Attempted a = rig.fetch("http://a/x");
  CHECK(a.attempts == 2);
  REQUIRE(rig.waits.size() == 1);
  CHECK(rig.waits[0] >= 3000ms);
  CHECK(rig.waits[0] <= 30000ms);
}

TEST_CASE("Retry-After beyond the backoff maximum ends the retries with the reason", "[attempt_policy]") {
  Rig rig(limits(5, 250ms, 30s));
  rig.transport.script["http://a/x"] = {status(429, 3600)};
  Attempted a = rig.fetch("http://a/x");
  CHECK(a.attempts == 1);
  CHECK(rig.waits.empty());
  CHECK(attempt_error(a) ==
        "HTTP 429; server asked to retry after 3600 s, longer than the backoff maximum (30000 ms)");
}

TEST_CASE("a 429 without Retry-After backs off like a 5xx", "[attempt_policy]") {
  Rig rig(limits(2, 200ms, 1s));
  rig.transport.script["http://a/x"] = {status(429), status(429)};
  Attempted a = rig.fetch("http://a/x");
  CHECK(a.attempts == 3);
  CHECK(a.response.status == 200);
  REQUIRE(rig.waits.size() == 2);
  CHECK(rig.waits[0] <= 200ms);
  CHECK(rig.waits[1] <= 400ms);  // the bound doubles with each retry
}

TEST_CASE("connection errors are retried max times, then reported with the transport's message",
          "[attempt_policy]") {
  Rig rig(limits(2, 100ms, 150ms));
  auto refused = transport_error(CURLE_COULDNT_CONNECT, "Failed to connect to a port 80: Connection refused");
  rig.transport.script["http://a/x"] = {refused, refused, refused, status(200)};
  Attempted a = rig.fetch("http://a/x");
  CHECK(a.attempts == 3);
  CHECK(rig.transport.calls.size() == 3);
  REQUIRE(rig.waits.size() == 2);
  CHECK(rig.waits[0] <= 100ms);
  CHECK(rig.waits[1] <= 150ms);  // capped at max_backoff
  CHECK(attempt_error(a) == "Failed to connect to a port 80: Connection refused");
}

TEST_CASE("a timeout is retried, and the next answer counts", "[attempt_policy]") {
  Rig rig(limits(2, 10ms, 10ms));
  rig.transport.script["http://a/x"] = {transport_error(CURLE_OPERATION_TIMEDOUT, "Operation timed out")};
  Attempted a = rig.fetch("http://a/x");
  CHECK(a.attempts == 2);
  CHECK(is_success(a.response));
}

TEST_CASE("a 404 and a bad certificate are final: one attempt, no wait", "[attempt_policy]") {
  Rig rig(limits(3, 10ms, 10ms));
  rig.transport.script["http://a/404"] = {status(404)};
  rig.transport.script["http://a/tls"] = {transport_error(CURLE_PEER_FAILED_VERIFICATION, "SSL certificate problem")};
  Attempted missing = rig.fetch("http://a/404");
  Attempted tls = rig.fetch("http://a/tls");
  CHECK(missing.attempts == 1);
  CHECK(attempt_error(missing) == "HTTP 404");
  CHECK(tls.attempts == 1);
  CHECK(attempt_error(tls) == "SSL certificate problem");
  CHECK(rig.waits.empty());
}

TEST_CASE("no retries: a 503 is the outcome after one attempt", "[attempt_policy]") {
  Rig rig(limits(0, 10ms, 10ms));
  rig.transport.script["http://a/x"] = {status(503)};
  Attempted a = rig.fetch("http://a/x");
  CHECK(a.attempts == 1);
  CHECK(attempt_error(a) == "HTTP 503");
}

TEST_CASE("concurrency bounds the attempts in flight", "[attempt_policy]") {
  AttemptLimits l;
  l.concurrency = 3;
  Rig rig(l);
  rig.transport.hold = true;
  std::vector<std::optional<Attempted>> out(10);
  for (size_t i = 0; i < out.size(); ++i) rig.start("http://a/" + std::to_string(i), out[i]);
  run_ready(rig.io);
  CHECK(rig.transport.held() == 3);
  CHECK(rig.policy->in_flight() == 3);
  auto all_done = [&] {
    rig.transport.release_all();
    for (auto& o : out)
      if (!o) return false;
    return true;
  };
  REQUIRE(run_until(rig.io, all_done));
  CHECK(rig.transport.max_in_flight == 3);
  CHECK(rig.policy->in_flight() == 0);
}

TEST_CASE("per_host bounds each host on its own", "[attempt_policy]") {
  AttemptLimits l;
  l.concurrency = 10;
  l.per_host = 2;
  Rig rig(l);
  rig.transport.hold = true;
  std::vector<std::optional<Attempted>> out(7);
  for (size_t i = 0; i < 5; ++i) rig.start("http://a/" + std::to_string(i), out[i]);
  for (size_t i = 5; i < 7; ++i) rig.start("http://b/" + std::to_string(i), out[i]);
  run_ready(rig.io);
  CHECK(rig.transport.held() == 4);  // two for a, two for b
  auto all_done = [&] {
    rig.transport.release_all();
    for (auto& o : out)
      if (!o) return false;
    return true;
  };
  REQUIRE(run_until(rig.io, all_done));
  CHECK(rig.transport.host_max_in_flight["a"] == 2);
  CHECK(rig.transport.host_max_in_flight["b"] == 2);
}

TEST_CASE("a backing-off request holds no permit", "[attempt_policy]") {
  AttemptLimits l = limits(1, 10ms, 10ms);
  l.concurrency = 1;
  l.retry.max_backoff = std::chrono::hours(1);
  Rig rig2(l, false);  // the engine's own timer
  rig2.transport.script["http://a/slow"] = {status(503, 1000)};  // its retry waits 1000 s
  std::optional<Attempted> slow, quick;
  rig2.start("http://a/slow", slow);
  REQUIRE(run_until(rig2.io, [&] { return rig2.retries == 1; }));
  rig2.start("http://a/quick", quick);
  REQUIRE(run_until(rig2.io, [&] { return quick.has_value(); }));
  CHECK(quick->attempts == 1);
  CHECK_FALSE(slow.has_value());
  // an abort cuts the engine timer's wait short: the request is dropped, no outcome
  rig2.control.request_abort();
  REQUIRE(run_until(rig2.io, [&] { return slow.has_value(); }));
  CHECK(slow->dropped);
  CHECK(slow->attempts == 1);
}

TEST_CASE("a stop ends a Retry-After wait with stop_ends_waits, and only an abort does without", "[attempt_policy]") {
  for (bool stop_ends_waits : {true, false}) {
    AttemptLimits l = limits(1, 10ms, 10ms);
    l.retry.max_backoff = std::chrono::hours(1);
    l.stop_ends_waits = stop_ends_waits;
    Rig rig(l, false);  // the engine's own timer
    rig.transport.script["http://a/slow"] = {status(503, 1000)};  // its retry waits 1000 s
    std::optional<Attempted> slow;
    rig.start("http://a/slow", slow);
    REQUIRE(run_until(rig.io, [&] { return rig.retries == 1; }));
    rig.control.request_stop(StopReason::signal);
    if (stop_ends_waits) {
      REQUIRE(run_until(rig.io, [&] { return slow.has_value(); }));
      CHECK(slow->dropped);  // no outcome: the next run asks again
      CHECK(slow->attempts == 1);
      continue;
    }
    run_ready(rig.io);
    CHECK_FALSE(slow.has_value());  // still waiting to finish what it took in
    rig.control.request_abort();
    REQUIRE(run_until(rig.io, [&] { return slow.has_value(); }));
    CHECK(slow->dropped);
  }
}

TEST_CASE("after a stop, requests not yet started are dropped and started ones finish", "[attempt_policy]") {
  AttemptLimits l;
  l.concurrency = 1;
  Rig rig(l);
  rig.transport.hold = true;
  std::optional<Attempted> first, second;
  rig.start("http://a/1", first);
  rig.start("http://a/2", second);
  run_ready(rig.io);
  REQUIRE(rig.transport.held() == 1);
  rig.control.request_stop(StopReason::signal);
  REQUIRE(run_until(rig.io, [&] {
    rig.transport.release_all();
    return first && second;
  }));
  CHECK(first->attempts == 1);
  CHECK_FALSE(first->dropped);
  CHECK(second->dropped);
  CHECK(second->attempts == 0);
  CHECK(rig.transport.calls == std::vector<std::string>{"http://a/1"});
}

TEST_CASE("an attempt the transport cancels is dropped, not counted", "[attempt_policy]") {
  Rig rig;
  rig.transport.hold = true;
  std::optional<Attempted> a;
  rig.start("http://a/1", a);
  run_ready(rig.io);
  rig.control.request_abort();
  rig.transport.abort_all();
  REQUIRE(run_until(rig.io, [&] { return a.has_value(); }));
  CHECK(a->dropped);
  CHECK(a->attempts == 0);
  CHECK(rig.started == 1);
  CHECK(rig.ended == 1);  // the observer still sees it end (in-flight counters)
}

TEST_CASE("a rate limit makes the second attempt wait for its token", "[attempt_policy]") {
  AttemptLimits l;
  l.rate = 0.001;  // one token now, the next in 1000 s
  Rig rig(l);
  std::optional<Attempted> first, second;
  rig.start("http://a/1", first);
  rig.start("http://a/2", second);
  REQUIRE(run_until(rig.io, [&] { return first.has_value(); }));
  run_ready(rig.io);
  CHECK(rig.transport.calls.size() == 1);
  CHECK_FALSE(second.has_value());
  rig.control.request_abort();  // the token wait gives way to an abort
  REQUIRE(run_until(rig.io, [&] { return second.has_value(); }));
  CHECK(second->dropped);
}

TEST_CASE("the default concurrency is the one afetch documents", "[attempt_policy]") {
  CHECK(AttemptLimits{}.concurrency == 32);
  CHECK(kDefaultFetchConcurrency == 32);
}
