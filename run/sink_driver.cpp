#include "run/sink_driver.h"

#include <random>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>

#include "engine/asio.h"

#include <spdlog/spdlog.h>

#include "engine/blocking_pool.h"
#include "run/checkpoint.h"
#include "run/dead_letters.h"
#include "engine/shutdown.h"
#include "engine/task_group.h"

namespace aetl {

using namespace asio::experimental::awaitable_operators;

SinkDriver::SinkDriver(RunContext& run, std::unique_ptr<PipelineSink> sink, std::string key, SinkBatching batching,
                       RetryPolicy retry, PartStats& stats)
    : run_(run),
      sink_(std::move(sink)),
      key_(std::move(key)),
      batching_(batching),
      retry_(retry),
      stats_(stats),
      wake_(run.stage.io.get_executor()),
      room_(run.stage.io.get_executor()) {
  if (batching_.size == 0) batching_.size = 1;
  // An abort must wake a push waiting for room and a writer waiting for records.
  run.stage.control.on_abort([this] {
    room_.notify();
    wake_.notify();
  });
}

SinkDriver::~SinkDriver() = default;

asio::awaitable<void> SinkDriver::push(Batch batch) {
  // Room for one write, gathering or being prepared (the one being written aside):
  // the sink holds at most two writes' worth of records, plus the batch that came
  // last, whatever the input's size.
  while (!finished_ && !closed_ && !run_.stage.control.aborted() &&
         (pending_count_ + ahead_count_ >= batching_.size || pending_bytes_ + ahead_bytes_ >= batching_.bytes))
    co_await room_.wait();
  if (closed_ || run_.stage.control.aborted()) co_return;  // not written, not acknowledged
  if (batch.empty()) co_return;
  if (pending_count_ == 0) first_pending_ = std::chrono::steady_clock::now();
  stats_.in += batch.size();
  size_t bytes = 0;
  for (const auto& r : batch) bytes += r.data.size() + r.row.size;
  pending_bytes_ += bytes;
  pending_count_ += batch.size();
  pending_.push_back(std::move(batch));
  pending_batch_bytes_.push_back(bytes);
  stats_.in_flight = pending_count_;
  wake_.notify();
}

void SinkDriver::finish() {
  finished_ = true;
  wake_.notify();
  room_.notify();
}

std::vector<std::string> SinkDriver::delivery_ids(const Batch& batch, bool& first) {
  std::vector<std::string> ids;
  ids.reserve(batch.size());
  first = true;
  for (const auto& r : batch) {
    RunContext::Delivery d = run_.delivery(r.pos);
    if (!d.id.empty() && r.part) d.id += "#" + std::to_string(r.part);
    first = first && d.first && !d.id.empty();
    ids.push_back(std::move(d.id));
  }
  return ids;
}

asio::awaitable<bool> SinkDriver::write_with_retry(Batch& batch, std::shared_ptr<void> prepared) {
  std::mt19937_64 rng{std::random_device{}()};
  // The main exactly-once sink's commits hold the checkpoint the next run reads.
  // Taken once per batch: a retry's commit may land with the first attempt's
  // snapshot (a reconnect finds it committed), and every later one covers it.
  const bool by_delivery = sink_->exactly_once() && key_ != "dead_letter" && run_.delivery;
  const bool main_checkpoint = holds_checkpoint && !by_delivery;
  if (main_checkpoint) run_.checkpoints.taken();
  std::vector<std::string> ids;
  bool first_deliveries = false;
  if (by_delivery) ids = delivery_ids(batch, first_deliveries);
  for (int attempt = 1;; ++attempt) {
    WriteContext wc;
    wc.prepared = prepared;
    wc.attempt = attempt;
    if (by_delivery) {
      wc.delivery_ids = std::move(ids);  // back in `ids` after the attempt (sinks only read them)
      wc.first_deliveries = first_deliveries;
    } else if (sink_->exactly_once()) {
      auto preview = std::make_shared<AckTracker>(run_.tracker);
      if (own_checkpoint) own_checkpoint(*preview);
      auto lengths = run_.sink_lengths ? run_.sink_lengths() : std::map<std::string, uint64_t>{};
      auto positions = std::make_shared<std::vector<Position>>();
      positions->reserve(batch.size());
      for (const auto& r : batch) positions->push_back(r.pos);
      wc.checkpoint_after = [preview, lengths, positions](const std::vector<std::pair<size_t, std::string>>& rejected) {
        AckTracker t = *preview;
        size_t k = 0;
        for (size_t i = 0; i < positions->size(); ++i) {
          if (k < rejected.size() && rejected[k].first == i) {
            ++k;
            continue;
          }
          t.ack((*positions)[i]);
        }
        Checkpoint cp = t.snapshot();
        cp.sink_lengths = lengths;
        return cp.to_json();
      };
    }
    std::chrono::milliseconds delay{0};
    try {
      auto started = std::chrono::steady_clock::now();
      if (before_commit) co_await before_commit();
      bool ok = co_await sink_->write(batch, wc);
      stats_.busy_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (!ok) co_return false;
      if (main_checkpoint) run_.checkpoints.saved();
      if (!wc.redelivered.empty()) {
        stats_.events["redelivered"] += wc.redelivered.size();
        spdlog::info("{}: {} record{} committed by an earlier delivery, not written again", sink_->describe(),
                     wc.redelivered.size(), wc.redelivered.size() == 1 ? "" : "s");
      }
      // Acknowledge: written records, and rejected ones go to the dead letter.
      size_t k = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (k < wc.rejected.size() && wc.rejected[k].first == i) {
          FailedRecord f;
          f.record = std::move(batch[i]);
          f.stage = stats_.name;
          f.error = wc.rejected[k].second;
          f.attempts = attempt;
          run_.dead_letters.push(std::move(f));
          ++stats_.failed;
          ++k;
          continue;
        }
        if (ack) ack(batch[i]);
        else run_.tracker.ack(batch[i].pos);
        ++stats_.out;
      }
      // Skipped as committed by an earlier delivery: handled, not written again.
      stats_.out -= wc.redelivered.size();
      stats_.dropped += wc.redelivered.size();
      ++stats_.batches;
      if (on_commit) on_commit();
      // The records are freed off the loop thread; the vector comes back empty to
      // gather a later write in (megabytes, else mapped and faulted in afresh).
      auto free_it = [this, b = std::move(batch)]() mutable {
        b.clear();
        asio::post(run_.stage.io, [this, b = std::move(b)]() mutable {
          if (b.capacity() > spare_.capacity()) spare_ = std::move(b);
        });
      };
      asio::post(run_.stage.pool.pool(), std::move(free_it));
      co_return true;
    } catch (const SinkError& e) {
      if (!e.transient || attempt > retry_.max_retries || run_.stage.control.aborted()) throw;
      delay = backoff_delay(retry_, attempt, rng);
      spdlog::warn("{}: {} (attempt {}, retrying in {} ms)", sink_->describe(), e.what(), attempt, delay.count());
    }
    if (by_delivery) ids = std::move(wc.delivery_ids);
    // not inside the handler: C++ forbids co_await there; an abort cuts the wait short
    asio::steady_timer t(run_.stage.io.get_executor(), delay);
    co_await (t.async_wait(asio::use_awaitable) || run_.stage.control.wait_abort());
    if (run_.stage.control.aborted()) co_return false;
  }
}

asio::awaitable<void> SinkDriver::open() { co_await sink_->open(run_.resume, key_); }

asio::awaitable<void> SinkDriver::write_in_background(std::shared_ptr<Batch> batch, std::shared_ptr<void> prepared) {
  // A failure must wake run() at once, not after the next linger.
  struct WakeOnExit {
    Wakeup& wake;
    ~WakeOnExit() { wake.notify(); }
  } wake_on_exit{wake_};
  bool ok = co_await write_with_retry(*batch, std::move(prepared));
  stats_.in_flight = pending_count_;
  if (!ok) {
    closed_ = true;
    run_.stage.control.request_stop(StopReason::downstream_closed);
    room_.notify();
  }
}

Batch SinkDriver::take_pending() {
  // How many: up to the size and bytes of a write, and then the rest of a split
  // record (jq): a checkpoint between its parts would leave the record unhandled
  // while part of it is in the output.
  auto same_line = [](const Position& a, const Position& b) { return a.source == b.source && a.line == b.line; };
  size_t n = 0, bytes = 0;
  bool full = false;
  const Record* prev = nullptr;
  for (size_t b = 0; b < pending_.size(); ++b) {
    const Batch& pb = pending_[b];
    size_t i = b == 0 ? front_taken_ : 0;
    // A whole batch that fits is taken without visiting its records (each a cache
    // miss on this thread: they were made on the lanes').
    if (i == 0 && !full && !pb.empty() && n + pb.size() <= batching_.size &&
        bytes + pending_batch_bytes_[b] <= batching_.bytes) {
      n += pb.size();
      bytes += pending_batch_bytes_[b];
      prev = &pb.back();
      continue;
    }
    for (; i < pb.size(); ++i) {
      const Record& r = pb[i];
      full = full || n >= batching_.size || (n > 0 && bytes + r.data.size() + r.row.size > batching_.bytes);
      if (full && !(prev && same_line(prev->pos, r.pos))) break;
      bytes += r.data.size() + r.row.size;
      ++n;
      prev = &r;
    }
    if (i < pb.size()) break;
  }
  pending_count_ -= n;
  pending_bytes_ -= bytes;
  Batch batch;
  if (front_taken_ == 0 && pending_.front().size() == n) {  // one whole batch: passed on as it is
    batch = std::move(pending_.front());
    pending_.pop_front();
    pending_batch_bytes_.pop_front();
    return batch;
  }
  batch.swap(spare_);  // empty, with the capacity of an earlier write: no fresh pages to fault in
  batch.reserve(n);
  while (n > 0) {
    Batch& front = pending_.front();
    size_t k = std::min(front.size() - front_taken_, n);
    auto from = front.begin() + static_cast<std::ptrdiff_t>(front_taken_);
    batch.insert(batch.end(), std::make_move_iterator(from), std::make_move_iterator(from + static_cast<std::ptrdiff_t>(k)));
    front_taken_ += k;
    n -= k;
    if (front_taken_ == front.size()) {
      pending_.pop_front();
      pending_batch_bytes_.pop_front();
      front_taken_ = 0;
    }
  }
  return batch;
}

asio::awaitable<void> SinkDriver::run() {
  // One write at a time, but the next batch is gathered and prepared while it runs.
  TaskGroup writer(run_.stage.io.get_executor());
  std::exception_ptr error;
  try {
    for (;;) {
      if (run_.stage.control.aborted() || closed_) break;
      if (writer.first_error()) break;
      bool full = pending_count_ >= batching_.size || pending_bytes_ >= batching_.bytes;
      auto due = first_pending_ + batching_.linger;
      bool ripe = pending_count_ > 0 && (full || finished_ || std::chrono::steady_clock::now() >= due);
      if (!ripe) {
        if (finished_ && pending_count_ == 0) break;
        co_await wake_.wait(pending_count_ == 0 ? std::chrono::steady_clock::time_point::max() : due);
        continue;
      }
      // Why this write goes now, per sink in the metrics (and at debug level).
      const char* reason = pending_count_ >= batching_.size    ? "size"
                           : pending_bytes_ >= batching_.bytes ? "bytes"
                           : !finished_                        ? "linger"
                           : run_.stage.control.stopping()     ? "stop"
                                                               : "end";
      ++stats_.flushes[reason];
      size_t count = pending_count_, bytes = pending_bytes_;
      spdlog::debug("{}: a write of up to {} records ({} bytes) goes: {}", stats_.name, std::min(count, batching_.size),
                    bytes, reason);
      auto batch = std::make_shared<Batch>(take_pending());
      ahead_count_ = count - pending_count_;
      ahead_bytes_ = bytes - pending_bytes_;
      first_pending_ = std::chrono::steady_clock::now();
      std::shared_ptr<void> prepared = co_await sink_->prepare(*batch);  // overlaps the running write
      co_await writer.wait_all();
      ahead_count_ = ahead_bytes_ = 0;  // now the one being written
      room_.notify();
      if (writer.first_error() || closed_ || run_.stage.control.aborted()) break;
      writer.spawn(write_in_background(std::move(batch), std::move(prepared)));
    }
  } catch (...) {
    error = std::current_exception();
  }
  co_await writer.wait_all();
  room_.notify();
  if (!error) error = writer.first_error();
  if (error) std::rethrow_exception(error);
  co_await sink_->close();
}

}  // namespace aetl
