#include <catch2/catch.hpp>

#include "engine/record_decoder.h"

using namespace aetl;

TEST_CASE("json lines: objects pass as written, the rest is refused", "[decoder]") {
  RecordDecoder d({LineFormat::json});
  std::string line = R"(  {"a": 1}  )";
  auto r = d.decode(line);
  CHECK(r.kind == Decoded::record);
  CHECK(r.data.empty());
  CHECK(d.last_trimmed() == R"({"a": 1})");
  CHECK(d.decode("").kind == Decoded::skip);
  CHECK(d.decode("   ").kind == Decoded::skip);
  CHECK(d.decode("[1]").kind == Decoded::error);
  CHECK(d.decode("[1]").data == "not a JSON object");
  CHECK(d.decode(R"({"a": tru})").kind == Decoded::error);
  RecordDecoder loose({LineFormat::json, false});
  CHECK(loose.decode(R"({"a": tru})").kind == Decoded::record);
}

TEST_CASE("json lines: numbers beyond 64 bits or a double and lone \\udcXX escapes are valid and kept as written", "[decoder]") {
  RecordDecoder d({LineFormat::json});
  for (std::string line : {R"({"a":123456789012345678901234567890})", R"({"a":[1e309,-1e400],"b":{"c":-123456789012345678901234567890}})",
                           R"({"s":"bad \udcff byte","\udc80":1})", R"({"a":1e309,"s":"\udcff"})"}) {
    INFO(line);
    auto r = d.decode(line);
    CHECK(r.kind == Decoded::record);
    CHECK(r.data.empty());
    CHECK(d.last_trimmed() == line);
    CHECK(d.last_parsed() == nullptr);
  }
  auto ok = d.decode(R"({"a":1})");
  CHECK(d.last_parsed() != nullptr);
  for (std::string bad : {R"({"a":01})", R"({"a":1.})", R"({"a":1e309} x)", R"({"a":1e309,})", R"({"a":1e309,"s":"\x"})",
                          R"({"a":1e309,"s":"\ud8"})"}) {
    INFO(bad);
    auto r = d.decode(bad);
    CHECK(r.kind == Decoded::error);
    CHECK(r.data.rfind("invalid JSON: ", 0) == 0);
  }
  CHECK(d.decode(R"({"a":01})").data == "invalid JSON: Problem while parsing a number");
}

TEST_CASE("json lines: bytes of a string that are not UTF-8 are kept as \\udcXX escapes", "[decoder]") {
  RecordDecoder d({LineFormat::json});
  auto r = d.decode("{\"a\": \"bad \xff byte\", \"\xfe\": 1, \"ok\": \"caf\xc3\xa9\"}");
  CHECK(r.kind == Decoded::record);
  CHECK(r.data == R"({"a": "bad \udcff byte", "\udcfe": 1, "ok": "café"})");
  auto big = d.decode("{\"a\": \"\xff\", \"n\": 123456789012345678901234567890}");
  CHECK(big.data == R"({"a": "\udcff", "n": 123456789012345678901234567890})");
  auto outside = d.decode("{\"a\": 1\xff}");
  CHECK(outside.kind == Decoded::error);
  CHECK(outside.data == "invalid JSON: The input is not valid UTF-8");
}

TEST_CASE("text lines become {\"line\": ...}", "[decoder]") {
  RecordDecoder d({LineFormat::text});
  CHECK(d.decode("say \"hi\"\t").data == R"({"line":"say \"hi\"\t"})");
  CHECK(d.decode("").data == R"({"line":""})");
}

TEST_CASE("csv: header, quotes, types, multi-line records, field counts", "[decoder]") {
  RecordDecoder d({LineFormat::csv});
  CHECK(d.decode("id,name,n").kind == Decoded::skip);
  CHECK(d.decode(R"(1,"Smith, Jo",2.5)").data == R"({"id":1,"name":"Smith, Jo","n":2.5})");
  CHECK(d.decode(R"(007,"a ""q""",-1e3)").data == R"({"id":"007","name":"a \"q\"","n":-1e3})");
  CHECK(d.decode(R"(2,"two)").kind == Decoded::more);
  CHECK(d.pending());
  CHECK(d.decode(R"(lines",)").data == R"({"id":2,"name":"two\nlines","n":""})");
  CHECK_FALSE(d.pending());
  auto bad = d.decode("1,2");
  CHECK(bad.kind == Decoded::error);
  CHECK(bad.data == "expected 3 fields (as in the header), got 2");
  RecordDecoder tabs({LineFormat::csv, true, '\t', false});
  tabs.decode("a\tb");
  CHECK(tabs.decode("1\tx,y").data == R"({"a":"1","b":"x,y"})");
}

TEST_CASE("csv: a line break inside quotes is kept as written, LF or CRLF", "[decoder]") {
  RecordDecoder d({LineFormat::csv});
  CHECK(d.decode_csv("a,b", 1, true).kind == Decoded::skip);
  CHECK(d.decode_csv(R"("x)", 2, true).kind == Decoded::more);
  CHECK(d.decode_csv(R"(y",1)", 3, true).data == R"({"a":"x\r\ny","b":1})");
  CHECK(d.decode_csv(R"("x)", 4, false).kind == Decoded::more);
  CHECK(d.decode_csv("", 5, true).kind == Decoded::more);
  CHECK(d.decode_csv(R"(y",2)", 6, false).data == R"({"a":"x\n\r\ny","b":2})");
}

TEST_CASE("csv: a closing quote followed by anything but the delimiter is an error with its place", "[decoder]") {
  RecordDecoder d({LineFormat::csv});
  d.decode_csv("a,b", 1, false);
  auto bad = d.decode_csv(R"("x"y,1)", 2, false);
  CHECK(bad.kind == Decoded::error);
  CHECK(bad.data == "unexpected character after the closing quote of a CSV field at line 2, column 4");
  CHECK(d.decode_csv(R"(1,"two)", 3, false).kind == Decoded::more);
  CHECK(d.decode_csv(R"(lines" )", 4, false).data ==
        "unexpected character after the closing quote of a CSV field at line 4, column 7");
  CHECK_FALSE(d.pending());
  CHECK(d.decode_csv(R"("x" ,1)", 5, false).kind == Decoded::error);
  CHECK(d.decode_csv(R"("",1)", 6, false).data == R"({"a":"","b":1})");
}

TEST_CASE("csv: a quote inside an unquoted field is kept as a plain character", "[decoder]") {
  RecordDecoder d({LineFormat::csv});
  d.decode_csv("a,b", 1, false);
  CHECK(d.decode_csv(R"(a"b,5")", 2, false).data == R"({"a":"a\"b","b":"5\""})");
}

TEST_CASE("csv: a malformed header row is an error and leaves no header", "[decoder]") {
  RecordDecoder d({LineFormat::csv});
  CHECK(d.decode_csv(R"("a"b,c)", 1, false).data ==
        "unexpected character after the closing quote of a CSV field at line 1, column 4");
  CHECK_FALSE(d.has_header());
}

TEST_CASE("json numbers are recognised exactly", "[decoder]") {
  for (const char* yes : {"0", "-0", "12", "1.5", "-1.5e10", "2E-3"}) CHECK(is_json_number(yes));
  for (const char* no : {"", "-", "01", "+1", "1.", ".5", "1e", "0x10", "1 ", "NaN"}) CHECK_FALSE(is_json_number(no));
}
