// Loading a checkpoint when memory runs out is out of memory (exit 1, the state
// kept), not a broken state store (exit 2, "run with --from-start", which would
// throw the progress away).
#include <catch2/catch.hpp>

#include <filesystem>
#include <new>
#include <unistd.h>
#include <string>

#include "engine/nothrow_new.h"
#include "engine/setup_error.h"
#include "run/checkpoint.h"
#include "run/checkpoint_keeper.h"
#include "run/pipeline_sink.h"
#include "run/state_store.h"

using namespace aetl;

namespace {
/// An exactly-once sink that only hands out the checkpoint it holds.
class HoldingSink final : public PipelineSink {
 public:
  explicit HoldingSink(std::string checkpoint) : checkpoint_(std::move(checkpoint)) {}
  asio::awaitable<void> open(const Checkpoint*, const std::string&) override { co_return; }
  asio::awaitable<bool> write(const Batch&, WriteContext&) override { co_return true; }
  asio::awaitable<void> close() override { co_return; }
  std::optional<std::string> stored_checkpoint() override { return checkpoint_; }
  bool exactly_once() const override { return true; }
  std::string describe() const override { return "holding"; }

 private:
  std::string checkpoint_;
};
}  // namespace

TEST_CASE("checkpoint: running out of memory while loading it is out of memory, not a broken store", "[checkpoint]") {
  auto dir = std::filesystem::temp_directory_path() / ("aetl-keeper-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    StateStore store((dir / "state.sqlite").string());
    Checkpoint cp;
    cp.inputs.push_back(InputMark{});
    cp.inputs.back().name = "in.jsonl";
    cp.inputs.back().line = 42;
    HoldingSink sink(cp.to_json());
    REQUIRE(load_checkpoint(store, &sink, "p", false)->inputs.at(0).line == 42);
    int out_of_memory = 0;
    for (int n = 0; n < 8; ++n) {
      INFO("allocation " << n << " fails");
      fail_nothrow_allocation_in(n);
      try {
        auto loaded = load_checkpoint(store, &sink, "p", false);
        fail_nothrow_allocation_in(-1);
        CHECK(loaded->inputs.at(0).line == 42);
      } catch (const std::bad_alloc&) {
        ++out_of_memory;
      } catch (const SetupError& e) {
        FAIL_CHECK("taken for a broken store: " << e.what());
      }
      fail_nothrow_allocation_in(-1);
    }
    CHECK(out_of_memory > 0);
  }
  std::filesystem::remove_all(dir);
}
