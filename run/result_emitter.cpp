#include "run/result_emitter.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "engine/semaphore.h"

namespace aetl {

ResultEmitter::ResultEmitter(asio::any_io_executor ex, BatchChannel& out, AsyncSemaphore& slots, bool ordered,
                             size_t flush_at, std::chrono::milliseconds linger)
    : out_(out),
      slots_(slots),
      ordered_(ordered),
      flush_at_(flush_at == 0 ? 1 : flush_at),
      linger_(linger),
      wake_(ex, asio::steady_timer::time_point::max()) {}

size_t ResultEmitter::ready_count() const { return ordered_ ? ready_ordered_ : ready_.size() + dropped_; }

void ResultEmitter::wake() { wake_.cancel(); }

void ResultEmitter::push(uint64_t seq, std::optional<Record> result) {
  size_t before = ready_count();
  if (ordered_) {
    parked_.emplace(seq, std::move(result));
    while (parked_.count(next_seq_ + ready_ordered_)) ++ready_ordered_;
  } else if (result) {
    ready_.push_back(std::move(*result));
  } else {
    ++dropped_;
  }
  size_t after = ready_count();
  if (before == 0 && after > 0) {
    first_ready_ = std::chrono::steady_clock::now();
    wake();
  } else if (after >= flush_at_ && before < flush_at_) {
    wake();
  }
}

void ResultEmitter::finish() {
  finished_ = true;
  wake();
}

Batch ResultEmitter::take_ready(size_t& consumed) {
  Batch batch;
  if (!ordered_) {
    batch.swap(ready_);
    consumed = batch.size() + dropped_;
    dropped_ = 0;
    return batch;
  }
  consumed = ready_ordered_;
  batch.reserve(consumed);
  auto it = parked_.begin();
  for (size_t i = 0; i < consumed; ++i) {
    if (it->second) batch.push_back(std::move(*it->second));
    it = parked_.erase(it);
  }
  next_seq_ += consumed;
  ready_ordered_ = 0;
  return batch;
}

asio::awaitable<void> ResultEmitter::run() {
  for (;;) {
    size_t ready = ready_count();
    bool drained = ready == 0 && (!ordered_ || parked_.empty());
    if (finished_ && drained) break;
    bool send_now = ready > 0 && (error_ || finished_ || ready >= flush_at_ ||
                                  std::chrono::steady_clock::now() >= first_ready_ + linger_);
    if (!send_now) {
      wake_.expires_at(ready > 0 ? first_ready_ + linger_ : asio::steady_timer::time_point::max());
      asio::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    size_t consumed = 0;
    Batch batch = take_ready(consumed);
    if (!batch.empty() && !error_) {
      try {
        co_await send_batch(out_, std::move(batch));
      } catch (...) {
        error_ = std::current_exception();
      }
    }
    slots_.release(consumed);
  }
  if (!error_) {
    try {
      co_await send_batch(out_, Batch{});
    } catch (...) {
      error_ = std::current_exception();
    }
  }
}

}  // namespace aetl
