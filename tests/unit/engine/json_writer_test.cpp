#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>

#include "engine/json_writer.h"

using aetl::append_json_string;
using aetl::JsonWriter;

namespace {

std::string quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace

TEST_CASE("an object with scalar members gets a comma between members", "[json]") {
  std::string out;
  JsonWriter w(out);
  w.begin_object()
      .key("s").string("x")
      .key("n").number(int64_t{42})
      .key("t").boolean(true)
      .key("f").boolean(false)
      .key("z").null()
      .end_object();
  CHECK(out == R"({"s":"x","n":42,"t":true,"f":false,"z":null})");
}

TEST_CASE("empty containers have no commas", "[json]") {
  std::string out;
  JsonWriter w(out);
  w.begin_array().begin_object().end_object().begin_array().end_array().end_array();
  CHECK(out == "[{},[]]");
}

TEST_CASE("nested containers put commas only between siblings", "[json]") {
  std::string out;
  JsonWriter w(out);
  w.begin_object()
      .key("a").begin_array()
          .number(int64_t{1})
          .begin_array().number(int64_t{2}).number(int64_t{3}).end_array()
          .begin_object().key("b").begin_object().key("c").null().end_object().key("d").string("e").end_object()
          .begin_array().end_array()
          .number(int64_t{4})
      .end_array()
      .key("f").begin_object().end_object()
      .key("g").number(int64_t{5})
      .end_object();
  CHECK(out == R"({"a":[1,[2,3],{"b":{"c":null},"d":"e"},[],4],"f":{},"g":5})");
}

TEST_CASE("a second object after a nested one still starts without a comma", "[json]") {
  std::string out;
  JsonWriter w(out);
  w.begin_array();
  for (int i = 0; i < 3; ++i) {
    w.begin_object().key("i").number(int64_t{i}).key("l").begin_array().number(int64_t{i}).end_array().end_object();
  }
  w.end_array();
  CHECK(out == R"([{"i":0,"l":[0]},{"i":1,"l":[1]},{"i":2,"l":[2]}])");
}

TEST_CASE("raw inserts a JSON fragment as one value", "[json]") {
  std::string out;
  JsonWriter w(out);
  w.begin_array().raw(R"({"k":[1,2]})").raw("7").string("s").end_array();
  CHECK(out == R"([{"k":[1,2]},7,"s"])");

  std::string obj;
  JsonWriter o(obj);
  o.begin_object().key("id").raw(R"("x")").key("n").raw("1").end_object();
  CHECK(obj == R"({"id":"x","n":1})");
}

TEST_CASE("the writer appends to text already in the string", "[json]") {
  std::string out = "prefix ";
  JsonWriter w(out);
  w.begin_array().number(int64_t{1}).end_array();
  CHECK(out == "prefix [1]");
}

TEST_CASE("integers are written in full, including the extremes", "[json]") {
  std::string out;
  JsonWriter w(out);
  w.begin_array()
      .number(int64_t{0})
      .number(int64_t{-17})
      .number(std::numeric_limits<int64_t>::max())
      .number(std::numeric_limits<int64_t>::min())
      .end_array();
  CHECK(out == "[0,-17,9223372036854775807,-9223372036854775808]");
}

TEST_CASE("numbers with decimals are written with the requested number of digits", "[json]") {
  std::string out;
  JsonWriter w(out);
  w.begin_array()
      .number(3.14159, 2)
      .number(1.0 / 3, 3)
      .number(-12.5, 1)
      .number(42.0, 0)
      .number(0.0, 1)
      .number(1234.5678, 1)
      .number(0.05, 3)
      .end_array();
  CHECK(out == "[3.14,0.333,-12.5,42,0.0,1234.6,0.050]");
}

TEST_CASE("quotes and backslashes are escaped", "[json][escape]") {
  CHECK(quoted(R"(a"b\c)") == R"("a\"b\\c")");
  CHECK(quoted("\"") == R"("\"")");
  CHECK(quoted("\\") == R"("\\")");
  CHECK(quoted("") == R"("")");
  CHECK(quoted("plain /slash") == R"("plain /slash")");
}

TEST_CASE("control characters are escaped, with short forms where JSON has them", "[json][escape]") {
  CHECK(quoted("\n\r\t\b\f") == R"("\n\r\t\b\f")");
  CHECK(quoted("\x01") == R"("\u0001")");
  CHECK(quoted("a\x1f" "b") == R"("a\u001fb")");
  CHECK(quoted(std::string_view("\0", 1)) == R"("\u0000")");
  CHECK(quoted("\x7f") == "\"\x7f\"");  // DEL is allowed in a JSON string
}

TEST_CASE("keys are escaped like strings", "[json][escape]") {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("a\"b\n").number(int64_t{1}).end_object();
  CHECK(out == R"({"a\"b\n":1})");
}

TEST_CASE("valid multi-byte UTF-8 is kept as it is", "[json][utf8]") {
  CHECK(quoted("caf\xC3\xA9") == "\"caf\xC3\xA9\"");                      // é, 2 bytes
  CHECK(quoted("\xE2\x82\xAC" "5") == "\"\xE2\x82\xAC" "5\"");            // €, 3 bytes
  CHECK(quoted("\xF0\x9F\x98\x80") == "\"\xF0\x9F\x98\x80\"");            // 😀, 4 bytes
  CHECK(quoted("\xC2\x80") == "\"\xC2\x80\"");                            // lowest 2-byte code point
  CHECK(quoted("\xE0\xA0\x80") == "\"\xE0\xA0\x80\"");                    // lowest 3-byte code point
  CHECK(quoted("\xED\x9F\xBF") == "\"\xED\x9F\xBF\"");                    // U+D7FF, just below the surrogates
  CHECK(quoted("\xEE\x80\x80") == "\"\xEE\x80\x80\"");                    // U+E000, just above them
  CHECK(quoted("\xF4\x8F\xBF\xBF") == "\"\xF4\x8F\xBF\xBF\"");            // U+10FFFF
}

TEST_CASE("bytes that are not valid UTF-8 are written as \\udcXX", "[json][utf8]") {
  CHECK(quoted("\xff") == R"("\udcff")");
  CHECK(quoted("a\xfe" "b") == R"("a\udcfeb")");
  // A lone lead byte, at the end and before ASCII.
  CHECK(quoted("\xC3") == R"("\udcc3")");
  CHECK(quoted("x\xC3") == R"("x\udcc3")");
  CHECK(quoted("\xC3(") == R"("\udcc3(")");
  // A lone continuation byte.
  CHECK(quoted("\x80") == R"("\udc80")");
  // Overlong encodings: '/' as C0 AF, and a 3-byte overlong.
  CHECK(quoted("\xC0\xAF") == R"("\udcc0\udcaf")");
  CHECK(quoted("\xC1\xBF") == R"("\udcc1\udcbf")");
  CHECK(quoted("\xE0\x80\xAF") == R"("\udce0\udc80\udcaf")");
  CHECK(quoted("\xF0\x80\x80\xAF") == R"("\udcf0\udc80\udc80\udcaf")");
  // A UTF-8-encoded surrogate (U+D800).
  CHECK(quoted("\xED\xA0\x80") == R"("\udced\udca0\udc80")");
  // Above U+10FFFF, and lead bytes that never occur.
  CHECK(quoted("\xF4\x90\x80\x80") == R"("\udcf4\udc90\udc80\udc80")");
  CHECK(quoted("\xF5\x80\x80\x80") == R"("\udcf5\udc80\udc80\udc80")");
  // A truncated 4-byte sequence followed by valid text.
  CHECK(quoted("\xF0\x9F\x98" "ok") == R"("\udcf0\udc9f\udc98ok")");
}

TEST_CASE("invalid bytes between valid characters do not disturb them", "[json][utf8]") {
  CHECK(quoted("\xC3\xA9\xff\xC3\xA9\"") == "\"\xC3\xA9\\udcff\xC3\xA9\\\"\"");
}

TEST_CASE("invalid UTF-8 inside the strings of JSON text is escaped, nothing else changes", "[json][utf8]") {
  std::string out;
  CHECK(aetl::escape_invalid_utf8_in_strings("{\"a\":\"x\xffy\",\"b\\\"\xc3\xa9\":\"\\\\\x80\"}", out));
  CHECK(out == "{\"a\":\"x\\udcffy\",\"b\\\"\xc3\xa9\":\"\\\\\\udc80\"}");
  CHECK_FALSE(aetl::escape_invalid_utf8_in_strings("{\"a\":\"caf\xc3\xa9\"}", out));
  CHECK_FALSE(aetl::escape_invalid_utf8_in_strings("{\"a\":1\xff}", out));
}
