#include "sources/lines/streamed_chunks.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "engine/shutdown.h"
#include "engine/wakeup.h"

namespace aetl {

BodyConsumer::Verdict StreamedChunks::on_data(std::string_view data) {
  if (control_.stopping()) return Verdict::fail;  // ends the transfer: the run is stopping
  if (ready_bytes_ >= kHighWater) {
    paused_ = true;
    return Verdict::pause;  // curl hands the same data again on resume
  }
  if (!current_) {
    current_ = std::make_unique<LineChunk>();
    splitter_.begin(*current_, std::max(data.size(), kMinChunk));
  }
  if (current_->room() < data.size()) grow(data.size());
  ChunkSplitter::append(*current_, data);
  // Cut when a line is complete (records flow as they arrive), or when an
  // unfinished line outgrows max_line (it is then skipped, not held).
  if (std::memchr(data.data(), '\n', data.size()) || current_->filled > max_line_ + 1) cut(false);
  return Verdict::accepted;
}

void StreamedChunks::finish() {
  if (!current_) {
    current_ = std::make_unique<LineChunk>();
    splitter_.begin(*current_, 0);
  }
  cut(true);
}

std::vector<std::unique_ptr<LineChunk>> StreamedChunks::take() {
  ready_bytes_ = 0;
  return std::exchange(ready_, {});
}

void StreamedChunks::cut(bool at_end) {
  splitter_.cut(*current_, at_end);
  ready_bytes_ += current_->filled;
  ready_.push_back(std::move(current_));
  wake_.notify();
}

void StreamedChunks::grow(size_t more) {
  auto bigger = std::make_unique<LineChunk>();
  size_t want = std::max(current_->capacity * 2, current_->filled + more);
  bigger->buffer = std::make_unique_for_overwrite<char[]>(want + LineChunk::kPadding);
  std::memset(bigger->buffer.get() + want, 0, LineChunk::kPadding);
  bigger->capacity = want;
  std::memcpy(bigger->buffer.get(), current_->buffer.get(), current_->filled);
  bigger->filled = current_->filled;
  current_ = std::move(bigger);
}

}  // namespace aetl
