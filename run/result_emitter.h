#pragma once
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"

#include "engine/channel.h"
#include "engine/record.h"

namespace aetl {

class AsyncSemaphore;

/// Collects the results of a concurrent stage and sends them downstream in batches.
///  - Every item the stage started has a sequence number and holds one slot of
///    `slots`; the slot is released only once its result has been handed to the
///    next channel, so a slow consumer slows the stage (backpressure) and the
///    results waiting here never exceed the slots.
///  - Unordered: results go out as they complete. Ordered: in sequence order, so
///    the reorder window is bounded by the slots.
///  - A batch goes out when `flush_at` results are ready, or `linger` after the
///    first of them became ready, or at the end.
///  - If the downstream channel fails, the error is kept (error()), further
///    results are dropped and their slots released, so the stage can wind down.
class ResultEmitter {
 public:
  ResultEmitter(asio::any_io_executor ex, BatchChannel& out, AsyncSemaphore& slots, bool ordered, size_t flush_at,
                std::chrono::milliseconds linger);

  /// Hands in the result for `seq`; nullopt means the item produced nothing
  /// (aborted or skipped) but its sequence number is used up.
  void push(uint64_t seq, std::optional<Record> result);
  /// No more pushes will come; run() sends what is left and the end marker.
  void finish();

  asio::awaitable<void> run();
  std::exception_ptr error() const { return error_; }

 private:
  size_t ready_count() const;
  Batch take_ready(size_t& consumed);
  void wake();

  BatchChannel& out_;
  AsyncSemaphore& slots_;
  bool ordered_;
  size_t flush_at_;
  std::chrono::milliseconds linger_;
  asio::steady_timer wake_;
  Batch ready_;                                       // unordered
  size_t dropped_ = 0;                                // unordered: sequence numbers with no result
  std::map<uint64_t, std::optional<Record>> parked_;  // ordered
  uint64_t next_seq_ = 0;                             // ordered
  size_t ready_ordered_ = 0;                          // ordered: contiguous results from next_seq_
  std::chrono::steady_clock::time_point first_ready_{};
  bool finished_ = false;
  std::exception_ptr error_;
};

}  // namespace aetl
