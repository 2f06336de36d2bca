// ChunkSplitter must cut exactly the lines LineSplitter yields (numbers, offsets,
// overlong lines), whatever the read sizes, and leave every line in place with
// readable padding after it.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "sources/lines/line_chunks.h"
#include "sources/lines/line_splitter.h"

using aetl::ChunkSplitter;
using aetl::Line;
using aetl::LineChunk;
using aetl::LineSplitter;

namespace {

std::string strip_cr(std::string s) {
  while (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

/// "number|end_offset|too_long|text" (an overlong line's prefix without a trailing CR).
std::string describe(uint64_t number, uint64_t end, bool too_long, std::string text) {
  if (too_long) text = strip_cr(text);
  return std::to_string(number) + "|" + std::to_string(end) + "|" + (too_long ? "long" : "ok") + "|" + text;
}

std::vector<std::string> with_line_splitter(const std::string& input, size_t max_line) {
  LineSplitter s(max_line);
  std::vector<Line> lines;
  s.feed(input, lines);
  s.finish(lines);
  std::vector<std::string> out;
  for (auto& l : lines) out.push_back(describe(l.number, l.end_offset, l.too_long, l.text));
  return out;
}

/// Reads `input` the way the lines source does: chunks of `want` bytes, each
/// read returning at most `read_max` bytes, a read of 0 bytes at the end.
std::vector<std::string> with_chunks(const std::string& input, size_t max_line, size_t want, size_t read_max) {
  ChunkSplitter s(max_line);
  std::vector<std::string> out;
  size_t at = 0;
  for (;;) {
    LineChunk c;
    s.begin(c, want);
    size_t n = std::min({c.room(), read_max, input.size() - at});
    ChunkSplitter::append(c, std::string_view(input).substr(at, n));
    at += n;
    s.cut(c, n == 0);
    for (const auto& r : c.lines) {
      if (!r.too_long) {
        // In place, with padding readable after the line.
        REQUIRE(r.begin + r.size + LineChunk::kPadding <= c.capacity + LineChunk::kPadding);
      }
      out.push_back(describe(r.number, r.end_offset, r.too_long, std::string(c.text(r))));
    }
    if (n == 0) break;
  }
  return out;
}

}  // namespace

TEST_CASE("ChunkSplitter: simple lines, CRLF, a last line without newline") {
  std::string in = "a\r\nbb\n\nccc";
  CHECK(with_chunks(in, 100, 4, 4) == with_line_splitter(in, 100));
  CHECK(with_chunks(in, 100, 1 << 20, 1 << 20) == with_line_splitter(in, 100));
}

TEST_CASE("ChunkSplitter: overlong lines within and across chunks") {
  std::string in = "short\n" + std::string(50, 'x') + "\nok\n" + std::string(300, 'y') + "\r\nend";
  for (size_t want : {1, 7, 16, 64, 1024})
    CHECK(with_chunks(in, 20, want, want) == with_line_splitter(in, 20));
}

TEST_CASE("ChunkSplitter: a line of exactly max_line, with and without CR") {
  std::string in = "abcd\nabcd\r\nabcde\nabcd\r";
  for (size_t want : {1, 2, 3, 5, 100}) CHECK(with_chunks(in, 4, want, want) == with_line_splitter(in, 4));
}

TEST_CASE("ChunkSplitter: random inputs and read sizes agree with LineSplitter") {
  std::mt19937 rng(12345);
  const char alphabet[] = {'a', 'b', '\n', '\r', '{', '"'};
  for (int round = 0; round < 500; ++round) {
    std::string in;
    size_t len = rng() % 400;
    for (size_t i = 0; i < len; ++i) in += alphabet[rng() % (rng() % 3 == 0 ? 6 : 2) + (rng() % 5 == 0 ? 2 : 0)];
    size_t max_line = 1 + rng() % 40;
    size_t want = 1 + rng() % 50;
    size_t read_max = 1 + rng() % 60;
    INFO("round " << round << " max_line " << max_line << " want " << want << " read " << read_max);
    REQUIRE(with_chunks(in, max_line, want, read_max) == with_line_splitter(in, max_line));
  }
}

TEST_CASE("ChunkSplitter: resumed numbering and offsets") {
  ChunkSplitter s(100);
  s.start_at(10, 500);
  LineChunk c;
  s.begin(c, 64);
  ChunkSplitter::append(c, "x\nyy\n");
  s.cut(c, false);
  REQUIRE(c.lines.size() == 2);
  CHECK(c.lines[0].number == 11);
  CHECK(c.lines[0].end_offset == 502);
  CHECK(c.lines[1].number == 12);
  CHECK(c.lines[1].end_offset == 505);
}

TEST_CASE("ChunkSplitter: a byte-order mark is dropped at the start of the input only (as LineSplitter drops it)") {
  const std::string bom = "\xEF\xBB\xBF";
  std::string in = bom + "a\r\n" + bom + "b\n";
  std::vector<std::string> expected = {"1|6|ok|a", "2|11|ok|" + bom + "b"};
  CHECK(with_line_splitter(in, 100) == expected);
  for (size_t want : {1, 2, 3, 4, 64}) CHECK(with_chunks(in, 100, want, want) == expected);
  CHECK(with_chunks(bom, 100, 64, 64).empty());
  CHECK(with_line_splitter(bom, 100).empty());
  CHECK(with_chunks(bom.substr(0, 2), 100, 1, 1) == std::vector<std::string>{"1|2|ok|" + bom.substr(0, 2)});
}

TEST_CASE("ChunkSplitter: each line says whether it ended with CRLF") {
  ChunkSplitter s(100);
  LineChunk c;
  s.begin(c, 64);
  ChunkSplitter::append(c, "a\r\nb\nc\r\n");
  s.cut(c, true);
  REQUIRE(c.lines.size() == 3);
  CHECK(c.lines[0].crlf);
  CHECK_FALSE(c.lines[1].crlf);
  CHECK(c.lines[2].crlf);
}

TEST_CASE("LineSplitter: each line says whether it ended with CRLF (a CR at the end of the input is no CRLF)") {
  LineSplitter s(100);
  std::vector<Line> lines;
  s.feed("a\r\nb\nc\r", lines);
  s.finish(lines);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].crlf);
  CHECK_FALSE(lines[1].crlf);
  CHECK_FALSE(lines[2].crlf);
  CHECK(lines[2].text == "c");
}
