#include <catch2/catch.hpp>

#include "pipeline/sources/record_decoder.h"

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
  CHECK(d.decode(R"({"a": "\xff"})").kind == Decoded::error);
  RecordDecoder loose({LineFormat::json, false});
  CHECK(loose.decode(R"({"a": tru})").kind == Decoded::record);
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

TEST_CASE("json numbers are recognised exactly", "[decoder]") {
  for (const char* yes : {"0", "-0", "12", "1.5", "-1.5e10", "2E-3"}) CHECK(is_json_number(yes));
  for (const char* no : {"", "-", "01", "+1", "1.", ".5", "1e", "0x10", "1 ", "NaN"}) CHECK_FALSE(is_json_number(no));
}
