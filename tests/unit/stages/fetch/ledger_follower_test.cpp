#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

#include "run/checkpoint.h"
#include "run/run_context.h"
#include "stages/fetch/fetch_state.h"
#include "stages/fetch/ledger_follower.h"
#include "tests/unit/test_support.h"

using aetl::AckTracker;
using aetl::CheckpointEvents;
using aetl::FetchState;
using aetl::LedgerFollower;
using aetl::Outcome;
using aetl::Position;

namespace {

/// Which of `keys` the ledger at `path` has as done, read by a fresh FetchState.
std::vector<char> done_in(const std::string& path, std::vector<std::string> keys) {
  asio::io_context io;
  FetchState ledger(path);
  std::vector<char> done;
  asio::co_spawn(io, ledger.already_done(std::move(keys)), [&](std::exception_ptr e, std::vector<char> d) {
    if (e) std::rethrow_exception(e);
    done = std::move(d);
  });
  io.run();
  return done;
}

struct Rig {
  aetl::test::TempDir dir;
  std::string path = dir / "ledger.db";
  asio::io_context io;
  AckTracker tracker;
  CheckpointEvents checkpoints;
  std::unique_ptr<LedgerFollower> follower;

  explicit Rig(bool gated) {
    checkpoints.gated = gated;
    tracker.add_input(0, "in", nullptr);
    follower = std::make_unique<LedgerFollower>(std::make_unique<FetchState>(path), tracker, checkpoints,
                                                io.get_executor(), "ledger");
  }
  void expect(uint64_t line, const std::string& key) {
    follower->expect(Position{0, line, line * 10}, key, Outcome::ok);
  }
  void handle(uint64_t line) { tracker.ack(Position{0, line, line * 10}); }
  /// Ends the run: the follower writes what is ready and is gone.
  std::vector<char> end(std::vector<std::string> keys) {
    aetl::test::run_ready(io);
    follower.reset();
    return done_in(path, std::move(keys));
  }
};

}  // namespace

TEST_CASE("without checkpoints in a state store an outcome is recorded once its record is handled",
          "[ledger_follower]") {
  Rig rig(false);
  rig.expect(1, "GET http://a/1");
  rig.expect(2, "GET http://a/2");
  rig.handle(1);
  CHECK(rig.end({"GET http://a/1", "GET http://a/2"}) == std::vector<char>{1, 0});
}

TEST_CASE("with checkpoints in a state store an outcome waits for a saved checkpoint that covers it",
          "[ledger_follower]") {
  Rig rig(true);
  rig.expect(1, "GET http://a/1");
  rig.expect(2, "GET http://a/2");
  rig.expect(3, "GET http://a/3");
  rig.handle(1);
  rig.checkpoints.taken();  // its snapshot covers line 1
  rig.handle(2);            // handled after the snapshot: not covered by this save
  rig.checkpoints.saved();
  rig.handle(3);            // handled, never covered by a checkpoint (the run was killed)
  CHECK(rig.end({"GET http://a/1", "GET http://a/2", "GET http://a/3"}) == std::vector<char>{1, 0, 0});
}

TEST_CASE("a failed checkpoint save releases nothing; the next save covers what it held", "[ledger_follower]") {
  Rig rig(true);
  rig.expect(1, "GET http://a/1");
  rig.handle(1);
  rig.checkpoints.taken();  // this save fails: no saved()
  SECTION("and nothing after it") {
    CHECK(rig.end({"GET http://a/1"}) == std::vector<char>{0});
  }
  SECTION("then a save succeeds") {
    rig.checkpoints.taken();
    rig.checkpoints.saved();
    CHECK(rig.end({"GET http://a/1"}) == std::vector<char>{1});
  }
}
