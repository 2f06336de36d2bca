#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aetl {

/// One line of input, without its terminator (LF or CRLF).
struct Line {
  std::string text;
  uint64_t number = 0;      ///< 1-based
  uint64_t end_offset = 0;  ///< byte offset just past the terminator
  bool too_long = false;    ///< longer than max_line: `text` holds only its first bytes
  bool crlf = false;        ///< the terminator was CRLF
};

/// The UTF-8 byte-order mark; at the very start of an input it is not part of line 1.
inline constexpr std::string_view kBom = "\xEF\xBB\xBF";

/// Splits a byte stream into lines; pure, no I/O. Memory is bounded by max_line:
/// a longer line is reported with too_long set and the rest of it is skipped.
/// A byte-order mark at the start of the stream is dropped from line 1.
class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line) : max_line_(max_line) {}
  /// Continue numbering after `line`, with `offset` bytes already consumed (a resumed read).
  void start_at(uint64_t line, uint64_t offset) {
    line_no_ = line;
    offset_ = offset;
    at_start_ = offset == 0;
  }

  void feed(std::string_view chunk, std::vector<Line>& out);
  /// End of input: a last line without a newline still counts.
  void finish(std::vector<Line>& out);

  static constexpr size_t kTooLongPrefix = 64;
  /// Spare capacity kept after each line's text (simdjson parses in place with it).
  static constexpr size_t kLinePadding = 64;  ///< bytes kept of an overlong line, for messages

 private:
  void emit(std::vector<Line>& out, bool at_lf);  // at_lf: the line ended with LF, not the input
  void drop_bom();

  size_t max_line_;
  std::string carry_;
  bool skipping_ = false;  // inside an overlong line
  uint64_t line_no_ = 0;
  uint64_t offset_ = 0;    // bytes consumed so far
  bool at_start_ = true;   // line 1 of the stream is next: a byte-order mark may lead it
};

}  // namespace aetl
