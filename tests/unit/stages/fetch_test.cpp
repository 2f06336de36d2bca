#include <catch2/catch.hpp>

#include <curl/curl.h>

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

#include "engine/blocking_pool.h"
#include "engine/channel.h"
#include "engine/shutdown.h"
#include "stages/fetch.h"
#include "stages/fetch/fetch_state.h"
#include "stages/fetch/request_lines.h"
#include "tests/unit/stages/fetch/fake_transport.h"
#include "tests/unit/test_support.h"

using namespace aetl;
using namespace std::chrono_literals;
using aetl::test::FakeTransport;
using aetl::test::run_ready;
using aetl::test::run_until;
using aetl::test::status;
using Strings = std::vector<std::string>;

namespace {

/// Says the keys it holds are done.
class KnownKeys final : public ResumeFilter {
 public:
  std::vector<std::string> done;
  asio::awaitable<std::vector<char>> already_done(std::vector<std::string> keys) override {
    std::vector<char> out;
    for (const auto& k : keys) out.push_back(std::find(done.begin(), done.end(), k) != done.end());
    co_return out;
  }
};

/// afetch's fetch stage (request lines in, result lines out) on a fake transport.
struct StageRig {
  asio::io_context io;
  BlockingPool pool{1};
  RunControl control{io.get_executor()};
  StageContext ctx{io, pool, control, {"urls.txt"}};
  FakeTransport transport{io};
  FetchStats stats;
  std::unique_ptr<RequestLines> lines;
  std::unique_ptr<FetchStage> stage;
  BatchChannel in{io, 4};
  BatchChannel out{io, 64};
  Batch results;
  bool ended = false;
  bool stage_done = false;

  explicit StageRig(FetchStageOptions options) {
    options.limits.retry = RetryPolicy{2, 1ms, 2ms};
    lines = std::make_unique<RequestLines>(ctx, RequestLinesOptions{}, nullptr, stats);
    stage = std::make_unique<FetchStage>(ctx, options, transport, *lines);
    asio::co_spawn(io, stage->run(in, out), [this](std::exception_ptr e) {
      stage_done = true;
      if (e) std::rethrow_exception(e);
    });
    asio::co_spawn(
        io,
        [this]() -> asio::awaitable<void> {
          for (;;) {
            Batch b = co_await receive_batch(out);
            if (b.empty()) break;
            for (auto& r : b) results.push_back(std::move(r));
          }
          ended = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  ~StageRig() {
    control.finish();
    pool.join();
  }

  /// Sends the lines as one batch, then the end marker.
  void feed(const Strings& text) {
    Batch batch;
    uint64_t line = 0;
    for (const auto& t : text) {
      Record r;
      r.data = t;
      r.pos.line = ++line;
      batch.push_back(std::move(r));
    }
    asio::co_spawn(
        io,
        [this, batch = std::move(batch)]() mutable -> asio::awaitable<void> {
          co_await send_batch(in, std::move(batch));
          co_await send_batch(in, Batch{});
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }

  Strings urls() const {
    Strings out;
    for (const auto& r : results) {
      auto at = r.data.find("\"url\":\"");
      out.push_back(at == std::string::npos ? r.data : r.data.substr(at + 7, r.data.find('"', at + 7) - at - 7));
    }
    return out;
  }
};

}  // namespace

TEST_CASE("ordered: results leave in input order whatever order they complete in", "[fetch_stage]") {
  FetchStageOptions o;
  o.ordered = true;
  StageRig rig(o);
  rig.transport.hold = true;
  rig.feed({"http://a/1", "http://a/2", "# a comment", "not a url", "http://a/3"});
  run_ready(rig.io);
  REQUIRE(rig.transport.held() == 3);
  rig.transport.release("http://a/3");
  run_ready(rig.io);
  rig.transport.release("http://a/2");
  run_ready(rig.io);
  CHECK(rig.results.empty());  // waiting for the first
  rig.transport.release("http://a/1");
  REQUIRE(run_until(rig.io, [&] { return rig.ended && rig.stage_done; }));
  CHECK(rig.urls() == Strings{"http://a/1", "http://a/2", "not a url", "http://a/3"});
  CHECK(rig.results[2].outcome == Outcome::input_error);
  CHECK(rig.stats.read == 4);
  CHECK(rig.stats.input_errors == 1);
  CHECK(rig.stats.ok == 3);
}

TEST_CASE("unordered: results leave as they complete", "[fetch_stage]") {
  StageRig rig({});
  rig.transport.hold = true;
  rig.feed({"http://a/1", "http://a/2", "http://a/3"});
  run_ready(rig.io);
  rig.transport.release("http://a/3");
  run_ready(rig.io);
  rig.transport.release("http://a/1");
  run_ready(rig.io);
  rig.transport.release("http://a/2");
  REQUIRE(run_until(rig.io, [&] { return rig.ended && rig.stage_done; }));
  CHECK(rig.urls() == Strings{"http://a/3", "http://a/1", "http://a/2"});
}

TEST_CASE("each result line carries its attempts and its outcome for the ledger", "[fetch_stage]") {
  StageRig rig({});
  rig.transport.script["http://a/flaky"] = {status(503)};
  rig.transport.script["http://a/busy"] = {status(503), status(503), status(503)};
  rig.transport.script["http://a/gone"] = {status(404)};
  rig.feed({"http://a/flaky", "http://a/busy", "http://a/gone"});
  REQUIRE(run_until(rig.io, [&] { return rig.ended && rig.stage_done; }));
  REQUIRE(rig.results.size() == 3);
  for (const auto& r : rig.results) {
    if (r.data.find("http://a/flaky") != std::string::npos) {
      CHECK(r.outcome == Outcome::ok);
      CHECK(r.data.find("\"status\":200") != std::string::npos);
      CHECK(r.data.find("\"attempts\":2") != std::string::npos);
    } else if (r.data.find("http://a/busy") != std::string::npos) {
      CHECK(r.outcome == Outcome::failed_retry);
      CHECK(r.data.find("\"attempts\":3") != std::string::npos);
      CHECK(r.data.find("\"error\":\"HTTP 503\"") != std::string::npos);
    } else {
      CHECK(r.data.find("http://a/gone") != std::string::npos);
      CHECK(r.outcome == Outcome::failed);
      CHECK(r.data.find("\"attempts\":1") != std::string::npos);
    }
  }
  CHECK(rig.stats.retries == 3);
  CHECK(rig.stats.by_class[5] == 4);
}

TEST_CASE("requests the ledger has as done are not fetched", "[fetch_stage]") {
  KnownKeys known;
  known.done = {"GET http://a/done"};
  FetchStageOptions o;
  o.filter = &known;
  StageRig rig(o);
  rig.feed({"http://a/done", "http://a/new"});
  REQUIRE(run_until(rig.io, [&] { return rig.ended && rig.stage_done; }));
  CHECK(rig.urls() == Strings{"http://a/new"});
  CHECK(rig.transport.calls == Strings{"http://a/new"});
  CHECK(rig.stats.skipped_done == 1);
}

TEST_CASE("a stop before the requests start passes nothing on and fetches nothing", "[fetch_stage]") {
  StageRig rig({});
  rig.control.request_stop(StopReason::signal);
  rig.feed({"http://a/1"});
  REQUIRE(run_until(rig.io, [&] { return rig.ended && rig.stage_done; }));
  CHECK(rig.results.empty());
  CHECK(rig.transport.calls.empty());
}
