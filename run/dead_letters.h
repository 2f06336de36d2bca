#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/record.h"
#include "engine/wakeup.h"
#include "engine/stage_context.h"

namespace aetl {

class AckTracker;
class SinkDriver;

/// A record that could not be processed.
struct FailedRecord {
  Record record;
  std::string stage;      ///< "filter#1", "lines", "sink sqlite"
  std::string error;
  int attempts = 1;
  bool record_is_json = true;  ///< false: `record.data` is not a JSON object (kept as a string)
};

/// Routes failed records to the `dead_letter:` sink, which acknowledges them once
/// written. Without a dead-letter sink a failure is logged (the first few in full)
/// and left unacknowledged: the checkpoint keeps the record, so the next run tries
/// it again, and the run exits 1.
class DeadLetters {
 public:
  DeadLetters(StageContext& ctx, AckTracker& tracker, SinkDriver* sink);

  /// Hands in a failure (loop thread). Call wait_room() before producing more.
  void push(FailedRecord failed);
  /// Suspends while too many failures wait for the dead-letter sink.
  asio::awaitable<void> wait_room();
  /// Feeds the dead-letter sink until finish() and everything is handed over.
  asio::awaitable<void> run();
  void finish();

  void set_sink(SinkDriver* sink) { sink_ = sink; }
  uint64_t count() const { return count_; }
  bool has_sink() const { return sink_ != nullptr; }

  /// The dead-letter line for a failure: {"error", "stage", "input", "line",
  /// "attempts", "record"}.
  static std::string to_json(const FailedRecord& f, const std::string& input_name);

 private:
  StageContext& ctx_;
  AckTracker& tracker_;
  SinkDriver* sink_;
  Batch queue_;
  bool finished_ = false;
  uint64_t count_ = 0;
  uint64_t logged_ = 0;
  Wakeup wake_;
  Wakeup room_;
};

}  // namespace aetl
