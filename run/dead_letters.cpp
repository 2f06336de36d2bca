#include "run/dead_letters.h"

#include <spdlog/spdlog.h>

#include "run/checkpoint.h"
#include "engine/json_writer.h"
#include "run/sink_driver.h"
#include "engine/shutdown.h"

namespace aetl {
namespace {
constexpr size_t kMaxQueued = 10000;
constexpr uint64_t kLoggedInFull = 10;
}  // namespace

DeadLetters::DeadLetters(StageContext& ctx, AckTracker& tracker, SinkDriver* sink)
    : ctx_(ctx), tracker_(tracker), sink_(sink), wake_(ctx.io.get_executor()), room_(ctx.io.get_executor()) {
  ctx.control.on_abort([this] {
    room_.notify();
    wake_.notify();
  });
}

std::string DeadLetters::to_json(const FailedRecord& f, const std::string& input_name) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("error").string(f.error);
  w.key("stage").string(f.stage);
  w.key("input").string(input_name);
  w.key("line").number(static_cast<int64_t>(f.record.pos.line));
  w.key("attempts").number(static_cast<int64_t>(f.attempts));
  w.key("record");
  if (f.record_is_json) w.raw(f.record.data);
  else w.string(f.record.data);
  w.end_object();
  return out;
}

void DeadLetters::push(FailedRecord f) {
  ++count_;
  const std::string& input =
      f.record.pos.source < ctx_.input_names.size() ? ctx_.input_names[f.record.pos.source] : std::string("-");
  if (!sink_) {
    tracker_.fail(f.record.pos);
    if (logged_ < kLoggedInFull)
      spdlog::warn("{}:{}: {}: {}", input, f.record.pos.line, f.stage, f.error);
    else if (logged_ == kLoggedInFull)
      spdlog::warn("more failures: not logged one by one (configure a dead_letter sink to keep them)");
    ++logged_;
    return;
  }
  Record r;
  r.pos = f.record.pos;
  r.part = f.record.part;
  r.data = to_json(f, input);
  queue_.push_back(std::move(r));
  wake_.notify();
}

asio::awaitable<void> DeadLetters::wait_room() {
  while (sink_ && queue_.size() >= kMaxQueued && !ctx_.control.aborted() && !finished_) co_await room_.wait();
}

void DeadLetters::finish() {
  finished_ = true;
  wake_.notify();
  room_.notify();
}

asio::awaitable<void> DeadLetters::run() {
  if (!sink_) co_return;
  for (;;) {
    if (queue_.empty()) {
      if (finished_ || ctx_.control.aborted()) break;
      co_await wake_.wait();
      continue;
    }
    Batch batch;
    batch.swap(queue_);
    room_.notify();
    co_await sink_->push(std::move(batch));
  }
  room_.notify();
  sink_->finish();
}

}  // namespace aetl
