#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include "engine/asio.h"

#include "engine/blocking_pool.h"
#include "engine/shutdown.h"
#include "sources/lines/line_splitter.h"
#include "tests/unit/test_support.h"

using aetl::Line;
using aetl::LineSplitter;

namespace {

/// "number|end_offset|too_long|text": one comparable string per line.
std::string describe(const Line& l) {
  return std::to_string(l.number) + "|" + std::to_string(l.end_offset) + "|" + (l.too_long ? "long" : "ok") + "|" +
         l.text;
}

std::vector<std::string> describe(const std::vector<Line>& lines) {
  std::vector<std::string> out;
  for (auto& l : lines) out.push_back(describe(l));
  return out;
}

/// Splits `input` fed in the given chunks, then finishes.
std::vector<Line> split(std::string_view input, size_t max_line, const std::vector<size_t>& cuts = {}) {
  LineSplitter splitter(max_line);
  std::vector<Line> out;
  size_t at = 0;
  for (size_t cut : cuts) {
    splitter.feed(input.substr(at, cut - at), out);
    at = cut;
  }
  splitter.feed(input.substr(at), out);
  splitter.finish(out);
  return out;
}

}  // namespace

TEST_CASE("LF-terminated lines are split with numbers and end offsets", "[line_splitter]") {
  auto lines = split("a\nbb\n\nccc\n", 100);
  CHECK(describe(lines) == std::vector<std::string>{"1|2|ok|a", "2|5|ok|bb", "3|6|ok|", "4|10|ok|ccc"});
}

TEST_CASE("CRLF terminators are removed and counted in the offsets", "[line_splitter]") {
  auto lines = split("a\r\nbb\r\n\r\nc\n", 100);
  CHECK(describe(lines) == std::vector<std::string>{"1|3|ok|a", "2|7|ok|bb", "3|9|ok|", "4|11|ok|c"});
}

TEST_CASE("a CR that is not before LF stays in the line", "[line_splitter]") {
  auto lines = split("a\rb\n", 100);
  CHECK(describe(lines) == std::vector<std::string>{"1|4|ok|a\rb"});
}

TEST_CASE("a last line without a newline counts once the input is finished", "[line_splitter]") {
  LineSplitter splitter(100);
  std::vector<Line> out;
  splitter.feed("one\ntwo", out);
  CHECK(describe(out) == std::vector<std::string>{"1|4|ok|one"});
  splitter.finish(out);
  CHECK(describe(out) == std::vector<std::string>{"1|4|ok|one", "2|7|ok|two"});

  auto crlf = split("x\r\ny\r", 100);  // a lone CR at the very end is a terminator's first half
  CHECK(describe(crlf) == std::vector<std::string>{"1|3|ok|x", "2|5|ok|y"});
}

TEST_CASE("empty input has no lines; a lone newline is one empty line", "[line_splitter]") {
  CHECK(split("", 100).empty());
  CHECK(describe(split("\n", 100)) == std::vector<std::string>{"1|1|ok|"});
  CHECK(describe(split("\n\n", 100)) == std::vector<std::string>{"1|1|ok|", "2|2|ok|"});
  CHECK(describe(split("\r\n", 100)) == std::vector<std::string>{"1|2|ok|"});
}

TEST_CASE("finish after a trailing newline adds no empty line", "[line_splitter]") {
  CHECK(describe(split("a\n", 100)) == std::vector<std::string>{"1|2|ok|a"});
}

TEST_CASE("lines split across feed() chunks at every position come out the same", "[line_splitter]") {
  // A char array, not a std::string: GCC 12 -Warray-bounds misreads the inlined copy.
  static constexpr char kInput[] = "first\r\n\nsecond line\n\r\nthird\r\nlast without newline";
  const std::string_view input(kInput, sizeof kInput - 1);
  const auto expected = describe(split(input, 100));
  REQUIRE(expected.size() == 6);
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(describe(split(input, 100, {cut})) == expected);
  }
  for (size_t a = 0; a <= input.size(); ++a)
    for (size_t b = a; b <= input.size(); ++b) REQUIRE(describe(split(input, 100, {a, b})) == expected);

  // One byte at a time, with empty chunks in between.
  LineSplitter splitter(100);
  std::vector<Line> out;
  for (char c : input) {
    splitter.feed(std::string_view(&c, 1), out);
    splitter.feed({}, out);
  }
  splitter.finish(out);
  CHECK(describe(out) == expected);
}

TEST_CASE("a line of exactly max_line bytes is accepted", "[line_splitter]") {
  auto lines = split("12345\n123456\n", 5);
  REQUIRE(lines.size() == 2);
  CHECK_FALSE(lines[0].too_long);
  CHECK(lines[0].text == "12345");
  CHECK(lines[1].too_long);
}

TEST_CASE("a CRLF line of exactly max_line bytes is accepted", "[line_splitter]") {
  // The CR is not counted against max_line: CRLF and LF input accept the same lines.
  auto lines = split("12345\r\n", 5);
  REQUIRE(lines.size() == 1);
  CHECK_FALSE(lines[0].too_long);
  CHECK(lines[0].text == "12345");
}

TEST_CASE("an overlong line is reported once, with a short prefix, and the next line is normal",
          "[line_splitter]") {
  // Built by append: GCC 12 warns falsely (-Warray-bounds) on "literal" + std::string.
  std::string input = "short\n";
  input.append(1000, 'x').append("\nnext\r\ntail");
  auto lines = split(input, 10);
  REQUIRE(lines.size() == 4);
  CHECK(describe(lines[0]) == "1|6|ok|short");
  CHECK(lines[1].too_long);
  CHECK(lines[1].number == 2);
  CHECK(lines[1].end_offset == 1007);
  CHECK(lines[1].text == std::string(LineSplitter::kTooLongPrefix, 'x'));
  CHECK(describe(lines[2]) == "3|1013|ok|next");
  CHECK(describe(lines[3]) == "4|1017|ok|tail");

  // The same at every chunk boundary.
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    auto again = split(input, 10, {cut});
    INFO("cut at " << cut);
    REQUIRE(again.size() == 4);
    CHECK(describe(again[0]) == "1|6|ok|short");
    CHECK(again[1].too_long);
    CHECK(again[1].end_offset == 1007);
    CHECK(again[1].text.size() <= LineSplitter::kTooLongPrefix);
    CHECK(again[1].text.find_first_not_of('x') == std::string::npos);
    CHECK(describe(again[2]) == "3|1013|ok|next");
    CHECK(describe(again[3]) == "4|1017|ok|tail");
  }
}

TEST_CASE("an overlong last line without a newline is reported once", "[line_splitter]") {
  auto lines = split("ok\n" + std::string(50, 'y'), 10);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].too_long);
  CHECK(lines[1].end_offset == 53);
}

TEST_CASE("an overlong line keeps at most kTooLongPrefix bytes wherever the chunks end", "[line_splitter]") {
  // max_line above kTooLongPrefix: a first chunk may already have buffered more
  // than kTooLongPrefix bytes of the line before it turns out to be too long.
  const size_t max_line = 100;
  std::string input(300, 'x');  // appended, not "+": see the GCC 12 note above
  input.append("\nz\n");
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    auto lines = split(input, max_line, {cut});
    INFO("cut at " << cut);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].too_long);
    CHECK(lines[0].text.size() <= LineSplitter::kTooLongPrefix);
    CHECK(lines[1].text == "z");
  }
}
