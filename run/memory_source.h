#pragma once
#include <string>
#include <utility>

#include "engine/engine.h"
#include "engine/shutdown.h"
#include "run/run_context.h"

namespace aetl {

/// A source of records already in memory (`aetl replay`'s dead-letter entries):
/// one input named `name`, each record's Position as given; sent in batches of
/// at most 1000, then the end marker. A stop ends it early.
class MemorySource final : public Source {
 public:
  MemorySource(RunContext& run, std::string name, Batch records) : run_(run), records_(std::move(records)) {
    run_.tracker.add_input(0, name, nullptr);
    run_.stage.input_names = {std::move(name)};
  }

  asio::awaitable<void> run(BatchChannel& out) override {
    Batch batch;
    for (auto& r : records_) {
      if (run_.stage.control.stopping()) break;
      batch.push_back(std::move(r));
      if (batch.size() == 1000) co_await send_batch(out, std::exchange(batch, Batch{}));
    }
    if (!batch.empty() && !run_.stage.control.stopping()) co_await send_batch(out, std::move(batch));
    co_await send_batch(out, Batch{});
  }

 private:
  RunContext& run_;
  Batch records_;
};

}  // namespace aetl
