#include "sources/lines/line_chunks.h"

#include <algorithm>
#include <cstring>

namespace aetl {

void ChunkSplitter::begin(LineChunk& chunk, size_t want) {
  // A long unfinished line doubles the room, so it is copied O(1) times per byte.
  size_t data = carry_.size() + std::max(want, carry_.size());
  if (!chunk.buffer || chunk.allocated < data + LineChunk::kPadding) {
    chunk.buffer.reset();
    chunk.buffer = std::make_unique_for_overwrite<char[]>(data + LineChunk::kPadding);
    chunk.allocated = data + LineChunk::kPadding;
  }
  std::memset(chunk.buffer.get() + data, 0, LineChunk::kPadding);
  chunk.capacity = data;
  chunk.filled = carry_.size();
  std::memcpy(chunk.buffer.get(), carry_.data(), carry_.size());
  carry_.clear();
  chunk.lines.clear();
  chunk.long_lines.clear();
}

void ChunkSplitter::append(LineChunk& chunk, std::string_view bytes) {
  std::memcpy(chunk.free_space(), bytes.data(), bytes.size());
  chunk.filled += bytes.size();
}

void ChunkSplitter::emit_long(LineChunk& chunk, uint64_t end_offset) {
  chunk.lines.push_back({chunk.long_lines.size(), 0, ++line_no_, end_offset, true});
  chunk.long_lines.push_back(std::move(long_prefix_));
  long_prefix_.clear();
  skipping_ = false;
}

void ChunkSplitter::extend_prefix(const char* bytes, size_t n) {
  if (long_prefix_.size() < LineSplitter::kTooLongPrefix)
    long_prefix_.append(bytes, std::min(n, LineSplitter::kTooLongPrefix - long_prefix_.size()));
}

void ChunkSplitter::cut(LineChunk& chunk, bool at_end) {
  const char* data = chunk.buffer.get();
  const size_t n = chunk.filled;
  const uint64_t base = offset_;  // input offset of data[0]
  size_t at = 0;
  if (at_start_ && !skipping_ && (n >= kBom.size() || at_end || std::memchr(data, '\n', n))) {
    at_start_ = false;
    if (std::string_view(data, n).starts_with(kBom)) at = kBom.size();
  }
  auto prefix_of = [&](size_t begin, size_t size) {
    return std::string(data + begin, std::min(size, LineSplitter::kTooLongPrefix));
  };
  while (at < n) {
    const void* nl = std::memchr(data + at, '\n', n - at);
    if (!nl) break;
    size_t end = static_cast<size_t>(static_cast<const char*>(nl) - data);
    uint64_t end_offset = base + end + 1;
    if (skipping_) {  // the end of an overlong line that began in an earlier chunk
      extend_prefix(data + at, end - at);
      emit_long(chunk, end_offset);
    } else {
      size_t size = end - at;
      bool crlf = size > 0 && data[end - 1] == '\r';
      if (crlf) --size;
      if (size > max_line_) {
        long_prefix_ = prefix_of(at, size);
        emit_long(chunk, end_offset);
      } else {
        chunk.lines.push_back({at, size, ++line_no_, end_offset, false, crlf});
      }
    }
    at = end + 1;
  }
  offset_ = base + at;
  size_t rest = n - at;
  if (rest == 0 && !(at_end && skipping_)) return;
  if (at_end) {
    offset_ += rest;
    if (skipping_) {
      extend_prefix(data + at, rest);
      emit_long(chunk, offset_);
      return;
    }
    size_t size = rest;
    if (data[n - 1] == '\r') --size;
    if (size > max_line_) {
      long_prefix_ = prefix_of(at, size);
      emit_long(chunk, offset_);
    } else {
      chunk.lines.push_back({at, size, ++line_no_, offset_});
    }
    return;
  }
  // The unfinished line waits for the next chunk (the one byte over max_line is
  // room for the CR of a CRLF); a line already too long is only skipped.
  if (skipping_) {
    extend_prefix(data + at, rest);
    offset_ += rest;
  } else if (rest > max_line_ + 1) {
    long_prefix_ = prefix_of(at, rest);
    skipping_ = true;
    offset_ += rest;
  } else {
    carry_.assign(data + at, rest);
  }
}

}  // namespace aetl
