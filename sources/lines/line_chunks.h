#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sources/lines/line_splitter.h"

namespace aetl {

/// A piece of an input holding whole lines only, read once and then worked on in
/// place: its lines are views into one buffer, which keeps kPadding readable
/// bytes past the data so simdjson can parse any line where it lies.
struct LineChunk {
  struct Ref {
    size_t begin = 0;         ///< too_long: the index in long_lines
    size_t size = 0;          ///< without the terminator (LF or CRLF)
    uint64_t number = 0;      ///< 1-based
    uint64_t end_offset = 0;  ///< byte offset just past the terminator
    bool too_long = false;    ///< over max_line: skipped, its first bytes in long_lines
    bool crlf = false;        ///< the terminator was CRLF (csv keeps it inside a quoted field)
  };
  static constexpr size_t kPadding = 64;

  std::unique_ptr<char[]> buffer;
  size_t allocated = 0; ///< bytes the buffer has (a recycled chunk's may exceed capacity + kPadding)
  size_t capacity = 0;  ///< bytes of data the buffer can hold (plus kPadding)
  size_t filled = 0;
  std::vector<Ref> lines;
  std::vector<std::string> long_lines;  ///< the first bytes of lines over max_line, for the dead letter

  std::string_view text(const Ref& r) const {
    return r.too_long ? std::string_view(long_lines[r.begin]) : std::string_view(buffer.get() + r.begin, r.size);
  }
  char* free_space() { return buffer.get() + filled; }
  size_t room() const { return capacity - filled; }
};

/// Cuts an input into LineChunks. The unfinished line at the end of one chunk
/// moves to the front of the next; a line longer than max_line is reported
/// (with its first bytes) and the rest of it skipped, so memory stays bounded.
/// A UTF-8 byte-order mark at the very start of the input is not part of line 1.
class ChunkSplitter {
 public:
  explicit ChunkSplitter(size_t max_line) : max_line_(max_line) {}
  /// Continue numbering after `line`, with `offset` bytes already consumed (a resumed read).
  void start_at(uint64_t line, uint64_t offset) {
    line_no_ = line;
    offset_ = offset;
    at_start_ = offset == 0;
  }
  /// Starts a chunk with room for at least `want` new bytes after the carried part.
  /// A recycled chunk's buffer is used again when it is big enough.
  void begin(LineChunk& chunk, size_t want);
  /// Appends bytes to a chunk begun with enough room (streamed input).
  static void append(LineChunk& chunk, std::string_view bytes);
  /// Cuts the whole lines of the chunk's data and keeps the unfinished rest for
  /// the next chunk; `at_end`: the input ended, the rest is the last line.
  void cut(LineChunk& chunk, bool at_end);
  /// Bytes of an unfinished line waiting for the next chunk.
  size_t carried() const { return carry_.size(); }

 private:
  void emit_long(LineChunk& chunk, uint64_t end_offset);
  void extend_prefix(const char* bytes, size_t n);  // the kept first bytes of an overlong line

  size_t max_line_;
  std::string carry_;       // the unfinished line (at most max_line + 1 bytes)
  bool skipping_ = false;   // inside an overlong line
  std::string long_prefix_;
  uint64_t line_no_ = 0;
  uint64_t offset_ = 0;     // input offset of the first byte not yet in a line
  bool at_start_ = true;    // no byte cut yet: a byte-order mark may lead
};

}  // namespace aetl
