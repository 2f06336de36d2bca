#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/record.h"
#include "engine/retry.h"
#include "run/pipeline_sink.h"
#include "run/run_context.h"
#include "engine/wakeup.h"

namespace aetl {

/// Drives one sink: gathers records into writes of `batching.size` (or
/// `batching.bytes`, or whatever is there after `linger`), retries transient
/// errors with backoff, and acknowledges written records to the tracker — only
/// after the write returned, i.e. once they are durable. It holds at most two
/// writes' worth of records (one being written; one gathering or being prepared)
/// plus the batch that came last: memory is bounded by `batching`, not the input.
class SinkDriver {
 public:
  /// `key` names the sink in checkpoints ("sink", "dead_letter").
  SinkDriver(RunContext& run, std::unique_ptr<PipelineSink> sink, std::string key, SinkBatching batching,
             RetryPolicy retry, PartStats& stats);
  ~SinkDriver();

  /// Opens the sink (a resumed file is cut back to its checkpointed length).
  asio::awaitable<void> open();
  /// Waits for room, then queues the records.
  asio::awaitable<void> push(Batch batch);
  /// No more records; run() writes what is left and returns.
  void finish();
  /// Writes until finish() and everything is written (open() first).
  asio::awaitable<void> run();

  PipelineSink& sink() { return *sink_; }
  const std::string& key() const { return key_; }
  /// Called after each acknowledged write (checkpoint keeping).
  std::function<void()> on_commit;
  /// Acknowledges one written record (default: to the tracker; several sinks:
  /// through the FanOut).
  std::function<void(const Record&)> ack;
  /// The main exactly-once sink of a one-sink pipeline: its commits hold the
  /// checkpoint the next run starts from (the run's CheckpointEvents follow them).
  bool holds_checkpoint = false;
  /// An exactly-once sink of several: adds to a copy of the tracker what was
  /// handled for this sink alone (FanOut::add_handled_for), making its checkpoint.
  std::function<void(AckTracker&)> own_checkpoint;
  /// Awaited before each write (of an exactly-once sink: its commit); may throw
  /// CheckpointTakenOver to stop the run without committing.
  std::function<asio::awaitable<void>()> before_commit;
  /// Set when the destination closed (stdout pipe): the run stops quietly.
  bool closed() const { return closed_; }

 private:
  asio::awaitable<bool> write_with_retry(Batch& batch, std::shared_ptr<void> prepared);
  /// The records' delivery IDs (RunContext::delivery); a part split from a
  /// delivery's record gets "#" and its Record::part after it. `first`: whether
  /// every record is its entry's first delivery.
  std::vector<std::string> delivery_ids(const Batch& batch, bool& first);
  /// One write running in the background while the next batch is gathered and prepared.
  asio::awaitable<void> write_in_background(std::shared_ptr<Batch> batch, std::shared_ptr<void> prepared);

  RunContext& run_;
  std::unique_ptr<PipelineSink> sink_;
  std::string key_;
  SinkBatching batching_;
  RetryPolicy retry_;
  PartStats& stats_;
  /// Gathers the next write from the pending batches (whole batches are passed on
  /// as they are: a record is moved at most once on the loop thread).
  Batch take_pending();

  std::deque<Batch> pending_;   // batches as they came; the first may be partly taken
  std::deque<size_t> pending_batch_bytes_;  // the bytes of each pending batch when it came
  Batch spare_;                 // empty: the vector of an earlier write, for take_pending()
  size_t front_taken_ = 0;      // records of pending_.front() taken already
  size_t pending_count_ = 0;    // records pending
  size_t pending_bytes_ = 0;
  size_t ahead_count_ = 0;      // records taken for the next write, not yet being written
  size_t ahead_bytes_ = 0;
  std::chrono::steady_clock::time_point first_pending_{};
  bool finished_ = false;
  bool closed_ = false;
  Wakeup wake_;
  Wakeup room_;
};

}  // namespace aetl
