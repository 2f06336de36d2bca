#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "sources/websocket/message_record.h"

using aetl::BinaryMessages;
using aetl::MessageRecords;

namespace {
// 2026-12-07T15:22:13.123456Z
const auto kAt = std::chrono::system_clock::time_point(std::chrono::microseconds(1796656933123456LL));

std::string make(MessageRecords& m, std::string_view data, bool binary = false) {
  std::string out;
  REQUIRE(m.make(data, binary, kAt, out));
  return out;
}
}  // namespace

TEST_CASE("a JSON object message gets the receive time as its first key", "[websocket]") {
  MessageRecords m("received_at", BinaryMessages::base64);
  CHECK(make(m, R"({"id": 1})") == R"({"received_at":"2026-12-07T15:22:13.123456Z","id": 1})");
  CHECK(make(m, "  {}  ") == R"({"received_at":"2026-12-07T15:22:13.123456Z"})");
}

TEST_CASE("a message with its own field of that name keeps it, and no time is added", "[websocket]") {
  MessageRecords m("received_at", BinaryMessages::base64);
  CHECK(make(m, R"({"received_at": "then", "a": 1})") == R"({"received_at": "then", "a": 1})");
  // the name deeper down does not count
  CHECK(make(m, R"({"x": {"received_at": 1}})") ==
        R"({"received_at":"2026-12-07T15:22:13.123456Z","x": {"received_at": 1}})");
}

TEST_CASE("other text becomes {\"message\": text}, line breaks of a JSON object go", "[websocket]") {
  MessageRecords m("", BinaryMessages::base64);
  CHECK(make(m, "hello \"you\"") == R"({"message":"hello \"you\""})");
  CHECK(make(m, "[1,2]") == R"({"message":"[1,2]"})");
  CHECK(make(m, "") == R"({"message":""})");
  CHECK(make(m, "{\n  \"a\": 1,\r\n  \"b\": \"x\"\n}") == R"({  "a": 1,  "b": "x"})");
}

TEST_CASE("binary messages: base64, read as text, or skipped", "[websocket]") {
  MessageRecords b64("", BinaryMessages::base64);
  CHECK(make(b64, std::string_view("\x01\x02\x03\xff", 4), true) == R"({"binary":"AQID/w=="})");
  MessageRecords text("", BinaryMessages::text);
  CHECK(make(text, R"({"a":1})", true) == R"({"a":1})");
  CHECK(make(text, "\xff", true) == R"({"message":"\udcff"})");
  MessageRecords skip("", BinaryMessages::skip);
  std::string out;
  CHECK_FALSE(skip.make("x", true, kAt, out));
  CHECK(make(skip, "x") == R"({"message":"x"})");
}
