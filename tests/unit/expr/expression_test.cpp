#include <algorithm>
#include <cstdlib>
#include <memory>

#include <catch2/catch.hpp>

#include "expr/expression.h"
#include "engine/parsed_record.h"

using aetl::expr::Evaluator;
using aetl::expr::ParseError;
using aetl::expr::Program;

namespace {

/// The same value, however it is spelled (escapes, number forms, spacing).
std::string normalised(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(simdjson::padded_string(json)).get(e)) return "not JSON: " + json;
  return simdjson::to_string(e);
}

/// The record as `select` leaves it for the next step: the values of its top-level
/// fields (nullopt when it has none or repeats a key, which select never writes).
struct Projected {
  Program program;
  std::vector<std::string> names;
  std::unique_ptr<Evaluator> eval;
  std::vector<aetl::expr::Value> values;
  aetl::expr::ProjectedRecord record;
};

std::unique_ptr<Projected> projected_of(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(simdjson::padded_string(json)).get(obj)) return nullptr;
  auto p = std::make_unique<Projected>();
  for (auto field : obj) {
    std::string name(field.key);
    if (std::find(p->names.begin(), p->names.end(), name) != p->names.end()) return nullptr;
    p->names.push_back(name);
    p->program.add(aetl::expr::field_expression(name));
  }
  p->eval = std::make_unique<Evaluator>(p->program, true);
  std::string err;
  if (!p->eval->bind(json, err)) return nullptr;
  for (size_t i = 0; i < p->names.size(); ++i) p->values.push_back(p->eval->eval(i));
  p->record = {&p->names, p->values.data()};
  return p;
}

/// Evaluates one expression against one record and returns the result as JSON.
/// Every call also evaluates it from a DOM parse of the record (as the first
/// step behind a source does) and checks that the value is the same, and, read
/// with exact numbers (as select and set read), that it is written the same byte
/// for byte; and from the values a select of every field would leave.
std::string eval_json(const std::string& expr, const std::string& record) {
  Program p;
  size_t i = p.add(expr);
  Evaluator e(p);
  std::string err;
  if (!e.bind(record, err)) return "error: " + err;
  std::string out;
  e.write_json(i, out);

  simdjson::dom::parser parser;
  simdjson::padded_string padded(record);
  aetl::expr::ParsedRecord parsed;
  bool timed = expr.find("now(") != std::string::npos;  // two reads of the clock differ
  if (!timed && !parser.parse(padded).get(parsed.root)) {
    Evaluator d(p);
    REQUIRE(d.bind(parsed, record, false, err));
    std::string from_parse;
    d.write_json(i, from_parse);
    INFO(expr << " on " << record);
    // Read without exact numbers (as filter reads), a number may be spelled otherwise.
    char* end_a = nullptr;
    char* end_b = nullptr;
    double a = std::strtod(out.c_str(), &end_a), b = std::strtod(from_parse.c_str(), &end_b);
    bool numbers = !out.empty() && !from_parse.empty() && *end_a == 0 && *end_b == 0 && out[0] != '"';
    if (numbers)
      CHECK(a == b);
    else
      CHECK(normalised(from_parse) == normalised(out));
    CHECK(d.test(i) == e.test(i));
    Evaluator x(p, true);
    REQUIRE(x.bind(parsed, record, false, err));
    std::string exact;
    x.write_json(i, exact);
    CHECK(exact == out);
  }
  if (auto proj = projected_of(record); proj && !timed) {
    Evaluator v(p, true);
    REQUIRE(v.bind(proj->record, record, false, err));
    std::string from_values;
    v.write_json(i, from_values);
    INFO(expr << " on " << record << " (from select's values)");
    CHECK(from_values == out);
    CHECK(v.test(i) == e.test(i));
  }
  return out;
}

bool test(const std::string& expr, const std::string& record) {
  Program p;
  size_t i = p.add(expr);
  Evaluator e(p);
  std::string err;
  REQUIRE(e.bind(record, err));
  bool result = e.test(i);
  simdjson::dom::parser parser;
  simdjson::padded_string padded(record);
  aetl::expr::ParsedRecord parsed;
  if (!parser.parse(padded).get(parsed.root)) {
    Evaluator d(p);
    REQUIRE(d.bind(parsed, record, false, err));
    INFO(expr << " on " << record << " (from the parse)");
    CHECK(d.test(i) == result);
  }
  if (auto proj = projected_of(record)) {
    Evaluator v(p);
    REQUIRE(v.bind(proj->record, record, false, err));
    INFO(expr << " on " << record << " (from select's values)");
    CHECK(v.test(i) == result);
  }
  return result;
}

size_t error_offset(const std::string& expr) {
  Program p;
  try {
    p.add(expr);
  } catch (const ParseError& e) {
    return e.offset;
  }
  FAIL("no parse error for " << expr);
  return 0;
}

const std::string rec =
    R"({"id":7,"status":404,"url":"https://x/a?q=\"1\"","user":{"country":"DE","name":"Ana","tags":["a","b"]},)"
    R"("ratio":0.5,"ok":false,"none":null,"list":[10,20,{"k":"v"}],"odd key":1,"and":2})";

}  // namespace

TEST_CASE("field paths read top-level, nested, indexed and quoted fields", "[expr]") {
  CHECK(eval_json("id", rec) == "7");
  CHECK(eval_json("user.country", rec) == R"("DE")");
  CHECK(eval_json("user.tags[1]", rec) == R"("b")");
  CHECK(eval_json("list[2].k", rec) == R"("v")");
  CHECK(eval_json("list[2]", rec) == R"({"k":"v"})");
  CHECK(eval_json("user.tags", rec) == R"(["a","b"])");
  CHECK(eval_json(R"($["odd key"])", rec) == "1");
  CHECK(eval_json("$.and", rec) == "2");
  CHECK(eval_json("missing", rec) == "null");
  CHECK(eval_json("user.missing.deeper", rec) == "null");
  CHECK(eval_json("id.deeper", rec) == "null");
  CHECK(eval_json("$", R"({"a": 1})") == R"({"a": 1})");
}

TEST_CASE("a string field is copied as written, escapes included", "[expr]") {
  CHECK(eval_json("url", rec) == R"("https://x/a?q=\"1\"")");
  CHECK(test(R"(url == 'https://x/a?q="1"')", rec));
}

TEST_CASE("comparisons follow the types", "[expr]") {
  CHECK(test("status >= 400", rec));
  CHECK_FALSE(test("status < 400", rec));
  CHECK(test("ratio == 0.5", rec));
  CHECK(test("id == 7.0", rec));
  CHECK(test("user.country == 'DE'", rec));
  CHECK(test("user.country != 'FR'", rec));
  CHECK(test("'abc' < 'abd'", rec));
  CHECK_FALSE(test("status > 'a'", rec));  // mixed types never order
  CHECK_FALSE(test("status < 'a'", rec));
  CHECK(test("none == null", rec));
  CHECK(test("missing == null", rec));
  CHECK_FALSE(test("ok", rec));
  CHECK(test("not ok", rec));
}

TEST_CASE("and, or, not and their symbols", "[expr]") {
  CHECK(test("status >= 400 and user.country in ['DE', 'FR']", rec));
  CHECK_FALSE(test("status >= 400 and user.country in ['US']", rec));
  CHECK(test("status < 400 or id == 7", rec));
  CHECK(test("!(status < 400) && (id == 7 || false)", rec));
  CHECK(test("user.country not in ['US', 'GB']", rec));
  CHECK(test("not status == 200", rec));
}

TEST_CASE("in looks into lists, arrays, strings and object keys", "[expr]") {
  CHECK(test("20 in list", rec));
  CHECK_FALSE(test("30 in list", rec));
  CHECK(test("'a' in user.tags", rec));
  CHECK(test("'x/a' in url", rec));
  CHECK(test("'country' in user", rec));
  CHECK(test("404 in [400, 404]", rec));
}

TEST_CASE("regular expressions use RE2 and search anywhere", "[expr]") {
  CHECK(test(R"(url =~ '^https://')", rec));
  CHECK(test(R"(url =~ 'q=\S+')", rec));
  CHECK(test(R"(user.name !~ '^[a-z]+$')", rec));
  CHECK_FALSE(test(R"(status =~ '4')", rec));  // only strings match
}

TEST_CASE("arithmetic and string concatenation", "[expr]") {
  CHECK(eval_json("status + 1", rec) == "405");
  CHECK(eval_json("status / 4", rec) == "101");
  CHECK(eval_json("status / 8", rec) == "50.5");
  CHECK(eval_json("status % 100", rec) == "4");
  CHECK(eval_json("-id * 2", rec) == "-14");
  CHECK(eval_json("ratio * 3", rec) == "1.5");
  CHECK(eval_json("id / 0", rec) == "null");
  CHECK(eval_json("user.name + '!'", rec) == R"("Ana!")");
  CHECK(eval_json("user.name + 1", rec) == "null");
  CHECK(eval_json("9223372036854775807 + 1", rec) == "9223372036854775808");
}

TEST_CASE("functions", "[expr]") {
  CHECK(eval_json("lower(user.country)", rec) == R"("de")");
  CHECK(eval_json("upper(user.name)", rec) == R"("ANA")");
  CHECK(eval_json("len(user.name)", rec) == "3");
  CHECK(eval_json("len('héllo')", rec) == "5");
  CHECK(eval_json("len(list)", rec) == "3");
  CHECK(eval_json("len(user)", rec) == "3");
  CHECK(eval_json("exists(none)", rec) == "true");
  CHECK(eval_json("exists(missing)", rec) == "false");
  CHECK(eval_json("num('42')", rec) == "42");
  CHECK(eval_json("num(' 2.5 ')", rec) == "2.5");
  CHECK(eval_json("num('x')", rec) == "null");
  CHECK(eval_json("int(ratio * 5)", rec) == "2");
  CHECK(eval_json("str(status)", rec) == R"("404")");
  CHECK(eval_json("str(user.tags)", rec) == R"("[\"a\",\"b\"]")");
  CHECK(eval_json("trim('  a b ')", rec) == R"("a b")");
  CHECK(eval_json("contains(url, 'x/a')", rec) == "true");
  CHECK(eval_json("starts_with(url, 'https')", rec) == "true");
  CHECK(eval_json("ends_with(user.name, 'na')", rec) == "true");
  CHECK(eval_json("coalesce(missing, none, user.name)", rec) == R"("Ana")");
  CHECK(eval_json("type(list)", rec) == R"("array")");
  CHECK(eval_json("if(status >= 500, 'server', 'client')", rec) == R"("client")");
  CHECK(eval_json("if(missing, 1, 2)", rec) == "2");
  CHECK(eval_json("type(missing)", rec) == R"("null")");
  std::string now = eval_json("now()", rec);
  CHECK(now.size() == 26);  // "YYYY-MM-DDTHH:MM:SS.mmmZ"
  CHECK(now.back() == '"');
  CHECK(test("unixtime() > 1700000000", rec));
}

TEST_CASE("literals", "[expr]") {
  CHECK(eval_json("[1, 'a', true, null]", rec) == R"([1,"a",true,null])");
  CHECK(eval_json(R"("tab\there")", rec) == R"("tab\there")");
  CHECK(eval_json("1.5e3", rec) == "1500");
  CHECK(eval_json(".5", rec) == "0.5");
}

TEST_CASE("parse errors point at the offending offset", "[expr]") {
  CHECK(error_offset("status >= ") == 10);
  CHECK(error_offset("status = 4") == 7);
  CHECK(error_offset("a and (b or c") == 13);
  CHECK(error_offset("lowr(x)") == 0);
  CHECK(error_offset("lower(x, y)") == 0);
  CHECK(error_offset("x =~ '('") == 5);
  CHECK(error_offset("x =~ y") == 5);
  CHECK(error_offset("'open") == 0);
  CHECK(error_offset("a b") == 2);
  CHECK(error_offset("a.") == 2);
  CHECK(error_offset("and") == 0);
  CHECK(error_offset("exists(1)") == 0);
  CHECK(error_offset("x # y") == 2);
}

TEST_CASE("records that are not JSON objects are refused at bind", "[expr]") {
  CHECK(eval_json("id", "[1,2]") == "error: not a JSON object");
  CHECK(eval_json("id", "42") == "error: not a JSON object");
  CHECK(eval_json("id", R"({"id": tru})").rfind("error:", 0) == 0);
  CHECK(eval_json("id", "not json").rfind("error:", 0) == 0);
}

TEST_CASE("many expressions share one pass over the record", "[expr]") {
  Program p;
  size_t a = p.add("user.country");
  size_t b = p.add("user.name");
  size_t c = p.add("status >= 400 and exists(user.tags)");
  Evaluator e(p);
  std::string err;
  REQUIRE(e.bind(rec, err));
  std::string out;
  e.write_json(a, out);
  out += ',';
  e.write_json(b, out);
  CHECK(out == R"("DE","Ana")");
  CHECK(e.test(c));
  REQUIRE(e.bind(R"({"user":{"name":"Bo"},"status":200})", err));
  out.clear();
  e.write_json(a, out);
  out += ',';
  e.write_json(b, out);
  CHECK(out == R"(null,"Bo")");
  CHECK_FALSE(e.test(c));
}

TEST_CASE("parse_path reads the targets of set", "[expr]") {
  CHECK(aetl::expr::parse_path("a.b[2]").text() == "a.b[2]");
  CHECK(aetl::expr::parse_path(R"($["x y"].z)").text() == R"(["x y"].z)");
  CHECK_THROWS_AS(aetl::expr::parse_path("a +"), ParseError);
}

TEST_CASE("a list holding fields compares as written, whether the record was parsed or not", "[expr]") {
  // test() checks the parsed and the text ways agree; these once differed.
  CHECK_FALSE(test("[x] == [1]", R"({"x":1.0})"));
  CHECK(test("[x] == [1]", R"({"x":1})"));
  // Strings are written one way (escapes undone), numbers as written.
  CHECK(test(R"([s] == ["café"])", R"({"s":"caf\u00e9"})"));
  CHECK_FALSE(test(R"([s] == ["cafe"])", R"({"s":"caf\u00e9"})"));
  CHECK(test("x in [1, y]", R"({"x":2.0,"y":2})"));
}

TEST_CASE("values are written the same whichever way the record was read", "[expr]") {
  // eval_json checks the text, the parse (exact numbers) and select's values agree.
  const std::string r = R"({"a":1.50,"b":-0,"c":1e3,"d":18446744073709551615,"e":"x\/y \u00e9","f":{"g":[1,2]},"h":7})";
  CHECK(eval_json("a", r) == "1.50");
  CHECK(eval_json("b", r) == "0");  // an integer is written one way
  CHECK(eval_json("c", r) == "1e3");
  CHECK(eval_json("d", r) == "18446744073709551615");
  CHECK(eval_json("e", r) == R"("x/y é")");
  CHECK(eval_json("f", r) == R"({"g":[1,2]})");
  CHECK(eval_json("f.g[1]", r) == "2");
  CHECK(eval_json("h", r) == "7");
  CHECK(eval_json("str(a)", r) == R"("1.50")");
  CHECK(eval_json("missing", r) == "null");
}

TEST_CASE("numbers beyond 64 bits are copied as written and compute as doubles, like jq", "[expr]") {
  const std::string r = R"({"big":123456789012345678901234567890,"neg":-123456789012345678901234567890,"n":1})";
  CHECK(eval_json("big", r) == "123456789012345678901234567890");
  CHECK(eval_json("neg", r) == "-123456789012345678901234567890");
  CHECK(test("big > 5", r));
  CHECK(test("neg < -5", r));
  CHECK(test("big == 123456789012345678901234567890", r));
  CHECK(eval_json("num(big)", r) == "1.2345678901234568e+29");
  CHECK(eval_json("big in [1, 123456789012345678901234567890]", r) == "true");
  CHECK(eval_json("n + 1", r) == "2");
}

TEST_CASE("a number beyond a double is copied as written, and computing with it is an error naming it", "[expr]") {
  const std::string r = R"({"huge":1e309,"neg":-1e400,"n":1})";
  CHECK(eval_json("huge", r) == "1e309");
  CHECK(eval_json("str(huge)", r) == R"("1e309")");
  CHECK(eval_json("exists(huge)", r) == "true");
  CHECK(eval_json("n + 1", r) == "2");
  CHECK(eval_json("huge > 5", r) == "error: number 1e309 is beyond what an expression computes with (about ±1.8e308)");
  CHECK(eval_json("num(neg)", r) == "error: number -1e400 is beyond what an expression computes with (about ±1.8e308)");
  CHECK(eval_json("n", R"({"n":1e-400})") == "1e-400");
  CHECK(test("n == 0", R"({"n":1e-400})"));
}

TEST_CASE("a string holding \\udcXX escapes reads as the bytes they stand for and is written back so", "[expr]") {
  const std::string r = R"({"s":"bad \udcff byte","k":"\ud83d\ude00"})";
  CHECK(eval_json("s", r) == R"("bad \udcff byte")");
  CHECK(eval_json("len(s)", r) == "10");
  CHECK(test(R"(starts_with(s, "bad "))", r));
  CHECK(eval_json("k", r) == "\"\xF0\x9F\x98\x80\"");
}

TEST_CASE("keys of any length are found, long and escaped ones too", "[expr]") {
  std::string long_key(70, 'k');
  std::string longer_key(90, 'k');
  std::string r = R"({")" + longer_key + R"(":1,")" + long_key + R"(":2,"a\u00dfb":3,"x":{"y":4,"yy":5}})";
  CHECK(eval_json(R"($[")" + long_key + R"("])", r) == "2");
  CHECK(eval_json(R"($[")" + longer_key + R"("])", r) == "1");
  CHECK(eval_json(R"($["aßb"])", r) == "3");
  CHECK(eval_json("x.yy", r) == "5");
  CHECK(eval_json("x.y", r) == "4");
  CHECK(eval_json("x.z", r) == "null");
}
