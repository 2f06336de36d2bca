#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "stages/fetch/fetch_request.h"

using aetl::check_header;
using aetl::check_method;
using aetl::LineKind;
using aetl::parse_request_line;
using aetl::ParsedRequest;
using aetl::RequestDefaults;
using Catch::Contains;
using Catch::StartsWith;

namespace {

struct Parsed {
  std::optional<ParsedRequest> request;
  LineKind kind = LineKind::request;
  std::string error;
};

Parsed parse(std::string_view line, const RequestDefaults& defaults = {}) {
  Parsed p;
  p.kind = LineKind::request;
  p.request = parse_request_line(line, defaults, p.kind, p.error);
  return p;
}

bool has_header(const ParsedRequest& r, const std::string& header) {
  auto& h = r.request.headers;
  return std::find(h.begin(), h.end(), header) != h.end();
}

size_t count_headers_named(const ParsedRequest& r, std::string name) {
  size_t n = 0;
  for (auto h : r.request.headers) {
    std::string lower = h.substr(0, h.find(':'));
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == name) ++n;
  }
  return n;
}

/// Parses a line that must be rejected; returns the error.
std::string rejected(std::string_view line, const RequestDefaults& defaults = {}) {
  auto p = parse(line, defaults);
  INFO("line: " << line);
  CHECK_FALSE(p.request.has_value());
  CHECK(p.kind == LineKind::request);
  CHECK_FALSE(p.error.empty());
  return p.error;
}

}  // namespace

TEST_CASE("a plain URL line becomes a GET request", "[fetch_request]") {
  auto p = parse("https://example.com/a/b?x=1");
  REQUIRE(p.request.has_value());
  CHECK(p.kind == LineKind::request);
  const auto& r = *p.request;
  CHECK(r.request.url == "https://example.com/a/b?x=1");
  CHECK(r.request.method == "GET");
  CHECK(r.request.headers.empty());
  CHECK_FALSE(r.request.body.has_value());
  CHECK(r.url.scheme == "https");
  CHECK(r.url.host == "example.com");
  CHECK(r.url.port == "443");
  CHECK(r.url.path == "/a/b");
  CHECK(r.url.query == "x=1");
  CHECK(r.key == "GET https://example.com/a/b?x=1");
  CHECK(r.id_json.empty());
}

TEST_CASE("blanks around a URL are ignored", "[fetch_request]") {
  for (const char* line : {"  http://example.com/x", "http://example.com/x  ", "\thttp://example.com/x\t",
                           "http://example.com/x\r", " \t http://example.com/x \r"}) {
    auto p = parse(line);
    INFO("line: '" << line << "'");
    REQUIRE(p.request.has_value());
    CHECK(p.request->request.url == "http://example.com/x");
  }
}

TEST_CASE("blank lines and lines starting with '#' are skipped", "[fetch_request]") {
  for (const char* line : {"", " ", "\t", "\r", "   \r", "#", "# a comment", "  # indented comment",
                           "#http://example.com/"}) {
    auto p = parse(line);
    INFO("line: '" << line << "'");
    CHECK_FALSE(p.request.has_value());
    CHECK(p.kind == LineKind::skip);
    CHECK(p.error.empty());
  }
}

TEST_CASE("defaults apply to a plain URL line", "[fetch_request]") {
  RequestDefaults d;
  d.method = "POST";
  d.headers = {"X-Api-Key: k", "Accept: */*"};
  d.body = "payload";
  auto p = parse("http://example.com/submit", d);
  REQUIRE(p.request.has_value());
  CHECK(p.request->request.method == "POST");
  CHECK(p.request->request.headers == d.headers);
  REQUIRE(p.request->request.body.has_value());
  CHECK(*p.request->request.body == "payload");
  CHECK_THAT(p.request->key, StartsWith("POST http://example.com/submit #"));
}

TEST_CASE("a JSON object gives url, method, headers, body and id", "[fetch_request][json]") {
  auto p = parse(R"({"url":"https://api.example.com/v1/items","method":"PUT",)"
                 R"("headers":{"X-Token":"abc","Accept":"text/plain"},"body":"raw text","id":{"n":1,"tags":["a"]}})");
  REQUIRE(p.request.has_value());
  const auto& r = *p.request;
  CHECK(r.request.url == "https://api.example.com/v1/items");
  CHECK(r.request.method == "PUT");
  CHECK(has_header(r, "X-Token: abc"));
  CHECK(has_header(r, "Accept: text/plain"));
  CHECK(count_headers_named(r, "content-type") == 0);  // a string body is sent as given
  REQUIRE(r.request.body.has_value());
  CHECK(*r.request.body == "raw text");
  CHECK(r.id_json == R"({"n":1,"tags":["a"]})");
  CHECK(r.url.host == "api.example.com");
  CHECK(r.url.path == "/v1/items");
}

TEST_CASE("a JSON object may be surrounded by blanks and have spaces inside", "[fetch_request][json]") {
  auto p = parse("  { \"url\" : \"http://example.com/\" , \"id\" : 7 }  \r");
  REQUIRE(p.request.has_value());
  CHECK(p.request->request.url == "http://example.com/");
  CHECK(p.request->id_json == "7");
}

TEST_CASE("string ids and other JSON ids are kept as raw JSON", "[fetch_request][json]") {
  auto s = parse(R"({"url":"http://example.com/","id":"row-1"})");
  REQUIRE(s.request.has_value());
  CHECK(s.request->id_json == R"("row-1")");
  auto a = parse(R"({"url":"http://example.com/","id":[1, "two", null]})");
  REQUIRE(a.request.has_value());
  CHECK(a.request->id_json == R"([1,"two",null])");
}

TEST_CASE("a body object becomes JSON text with Content-Type application/json and implies POST",
          "[fetch_request][json]") {
  auto p = parse(R"({"url":"http://example.com/api","body":{"a":1,"b":[true,null,"x"]}})");
  REQUIRE(p.request.has_value());
  const auto& r = *p.request;
  REQUIRE(r.request.body.has_value());
  CHECK(*r.request.body == R"({"a":1,"b":[true,null,"x"]})");
  CHECK(has_header(r, "Content-Type: application/json"));
  CHECK(count_headers_named(r, "content-type") == 1);
  CHECK(r.request.method == "POST");
}

TEST_CASE("a body array or number is JSON too", "[fetch_request][json]") {
  auto p = parse(R"({"url":"http://example.com/api","body":[1,2]})");
  REQUIRE(p.request.has_value());
  CHECK(*p.request->request.body == "[1,2]");
  CHECK(has_header(*p.request, "Content-Type: application/json"));
  auto n = parse(R"({"url":"http://example.com/api","body":42})");
  REQUIRE(n.request.has_value());
  CHECK(*n.request->request.body == "42");
}

TEST_CASE("a string body without a method implies POST but no Content-Type", "[fetch_request][json]") {
  auto p = parse(R"({"url":"http://example.com/api","body":"a=1&b=2"})");
  REQUIRE(p.request.has_value());
  CHECK(p.request->request.method == "POST");
  CHECK(count_headers_named(*p.request, "content-type") == 0);
}

TEST_CASE("an explicit method is kept when a body is given", "[fetch_request][json]") {
  auto p = parse(R"({"url":"http://example.com/api","method":"PATCH","body":{"a":1}})");
  REQUIRE(p.request.has_value());
  CHECK(p.request->request.method == "PATCH");
  // The method may also come after the body.
  auto q = parse(R"({"url":"http://example.com/api","body":{"a":1},"method":"PUT"})");
  REQUIRE(q.request.has_value());
  CHECK(q.request->request.method == "PUT");
}

TEST_CASE("a Content-Type given for a JSON body is not doubled", "[fetch_request][json]") {
  auto p = parse(R"({"url":"http://example.com/api","headers":{"content-type":"application/vnd.x+json"},)"
                 R"("body":{"a":1}})");
  REQUIRE(p.request.has_value());
  CHECK(count_headers_named(*p.request, "content-type") == 1);
  CHECK(has_header(*p.request, "content-type: application/vnd.x+json"));
}

TEST_CASE("a null body removes the default body", "[fetch_request][json]") {
  RequestDefaults d;
  d.body = "default";
  auto p = parse(R"({"url":"http://example.com/","body":null})", d);
  REQUIRE(p.request.has_value());
  CHECK_FALSE(p.request->request.body.has_value());
  CHECK(p.request->request.method == "GET");
}

TEST_CASE("object headers replace default headers of the same name, whatever the case", "[fetch_request][json]") {
  RequestDefaults d;
  d.headers = {"Accept: */*", "X-Keep: 1"};
  auto p = parse(R"({"url":"http://example.com/","headers":{"accept":"text/html"}})", d);
  REQUIRE(p.request.has_value());
  CHECK(count_headers_named(*p.request, "accept") == 1);
  CHECK(has_header(*p.request, "accept: text/html"));
  CHECK(has_header(*p.request, "X-Keep: 1"));
}

TEST_CASE("an unknown field in a JSON object is rejected", "[fetch_request][json]") {
  auto error = rejected(R"({"url":"http://example.com/","extra":1})");
  CHECK_THAT(error, Contains("unknown field 'extra'"));
  CHECK_THAT(rejected(R"({"URL":"http://example.com/"})"), Contains("unknown field 'URL'"));
}

TEST_CASE("a JSON object without a url, or with a url that is not a string, is rejected", "[fetch_request][json]") {
  CHECK_THAT(rejected(R"({"method":"GET"})"), Contains("missing \"url\""));
  CHECK_THAT(rejected(R"({})"), Contains("missing \"url\""));
  CHECK_THAT(rejected(R"({"url":5})"), Contains("\"url\" must be a string"));
  CHECK_THAT(rejected(R"({"url":null})"), Contains("\"url\" must be a string"));
  CHECK_THAT(rejected(R"({"url":["http://example.com/"]})"), Contains("\"url\" must be a string"));
}

TEST_CASE("headers with CR or LF are rejected", "[fetch_request][json][header]") {
  CHECK_THAT(rejected(R"({"url":"http://example.com/","headers":{"X-A":"a\r\nEvil: 1"}})"),
             Contains("CR, LF or NUL"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","headers":{"X-A":"a\nb"}})"), Contains("CR, LF or NUL"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","headers":{"X-A":"a\rb"}})"), Contains("CR, LF or NUL"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","headers":{"X-A":"a\u0000b"}})"), Contains("CR, LF or NUL"));
}

TEST_CASE("malformed headers in a JSON object are rejected", "[fetch_request][json][header]") {
  rejected(R"({"url":"http://example.com/","headers":{"Bad Name":"x"}})");
  rejected(R"({"url":"http://example.com/","headers":{"X-Evil\r\nHost":"x"}})");
  rejected(R"({"url":"http://example.com/","headers":{"":"x"}})");
  CHECK_THAT(rejected(R"({"url":"http://example.com/","headers":{"X-N":1}})"), Contains("must be a string"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","headers":["X-A: b"]})"), Contains("\"headers\" must be"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","headers":"X-A: b"})"), Contains("\"headers\" must be"));
}

TEST_CASE("check_header accepts 'Name: value' and rejects anything else", "[fetch_request][header]") {
  CHECK(check_header("X-Api-Key: abc").empty());
  CHECK(check_header("Accept: */*").empty());
  CHECK(check_header("X-Empty:").empty());
  CHECK_FALSE(check_header("NoColon").empty());
  CHECK_FALSE(check_header(": value").empty());
  CHECK_FALSE(check_header("Bad Name: v").empty());
  CHECK_FALSE(check_header("X(y): v").empty());
  CHECK_FALSE(check_header("X: a\r\nEvil: 1").empty());
  CHECK_FALSE(check_header("X: a\nb").empty());
  CHECK_FALSE(check_header(std::string_view("X: a\0b", 6)).empty());
}

TEST_CASE("an invalid method is rejected", "[fetch_request][method]") {
  CHECK_THAT(rejected(R"({"url":"http://example.com/","method":"GE T"})"), Contains("invalid HTTP method"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","method":"GET\r\nX: y"})"), Contains("invalid HTTP method"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","method":"G(E)T"})"), Contains("invalid HTTP method"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","method":""})"), Contains("empty HTTP method"));
  CHECK_THAT(rejected(R"({"url":"http://example.com/","method":7})"), Contains("\"method\" must be a string"));
}

TEST_CASE("check_method accepts HTTP tokens only", "[fetch_request][method]") {
  for (const char* ok : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND", "M-SEARCH"})
    CHECK(check_method(ok).empty());
  for (const char* bad : {"", "GE T", "GET\n", "GET/1", "(GET)", "GET:", "\xC3\xA9"}) {
    INFO("method: '" << bad << "'");
    CHECK_FALSE(check_method(bad).empty());
  }
}

TEST_CASE("a request line with an ftp or file URL is rejected", "[fetch_request][url]") {
  CHECK_THAT(rejected("ftp://example.com/file.txt"), Contains("unsupported scheme"));
  CHECK_FALSE(rejected("file:///etc/passwd").empty());
  CHECK_FALSE(rejected("file://localhost/etc/passwd").empty());
  CHECK_FALSE(rejected(R"({"url":"file:///etc/passwd"})").empty());
  CHECK_FALSE(rejected(R"({"url":"ftp://example.com/"})").empty());
}

TEST_CASE("a request line whose URL has no scheme is rejected", "[fetch_request][url]") {
  CHECK_THAT(rejected("example.com/path"), Contains("no scheme"));
  CHECK_THAT(rejected("www.example.com"), Contains("no scheme"));
  CHECK_FALSE(rejected("//example.com/path").empty());
  CHECK_FALSE(rejected("/etc/passwd").empty());
  CHECK_FALSE(rejected(R"({"url":"example.com"})").empty());
  CHECK_FALSE(rejected(R"({"url":""})").empty());
}

TEST_CASE("a URL with a space or control character is rejected", "[fetch_request][url]") {
  rejected("http://example.com/a b");
  rejected("http://example.com/\x01");
  rejected(R"({"url":"http://example.com/\r\nHost: evil"})");
}

TEST_CASE("invalid JSON is rejected with a JSON error", "[fetch_request][json]") {
  for (const char* bad : {"{", R"({"url": "http://example.com/")", R"({url: "http://example.com/"})",
                          R"({"url": "http://example.com/",})", R"({"url": 'http://example.com/'})",
                          R"({"url":"http://example.com/"} trailing)"}) {
    auto error = rejected(bad);
    CHECK_THAT(error, StartsWith("invalid JSON"));
  }
}

TEST_CASE("the key differs when the body differs", "[fetch_request][key]") {
  auto a = parse(R"({"url":"http://example.com/api","body":{"n":1}})");
  auto b = parse(R"({"url":"http://example.com/api","body":{"n":2}})");
  auto a2 = parse(R"({"url":"http://example.com/api","body":{"n":1}})");
  auto none = parse(R"({"url":"http://example.com/api","method":"POST"})");
  auto empty = parse(R"({"url":"http://example.com/api","body":""})");
  REQUIRE((a.request && b.request && a2.request && none.request && empty.request));
  CHECK(a.request->key != b.request->key);
  CHECK(a.request->key == a2.request->key);
  CHECK(a.request->key != none.request->key);
  CHECK(none.request->key != empty.request->key);
  CHECK(none.request->key == "POST http://example.com/api");
  CHECK_THAT(a.request->key, StartsWith("POST http://example.com/api #"));
}

TEST_CASE("the key differs when the method or URL differs", "[fetch_request][key]") {
  auto get = parse("http://example.com/x");
  auto head = parse(R"({"url":"http://example.com/x","method":"HEAD"})");
  auto other = parse("http://example.com/y");
  REQUIRE((get.request && head.request && other.request));
  CHECK(get.request->key != head.request->key);
  CHECK(get.request->key != other.request->key);
  // A plain line and the equivalent object name the same request.
  auto obj = parse(R"({"url":"http://example.com/x"})");
  REQUIRE(obj.request);
  CHECK(obj.request->key == get.request->key);
}

TEST_CASE("a URL's password never appears in its --state key, which stays stable", "[fetch_request][secrets]") {
  LineKind kind;
  std::string error;
  auto a = parse_request_line("http://u:secret@example.com/x", {}, kind, error);
  auto b = parse_request_line("http://u:other@example.com/x", {}, kind, error);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->key.find("secret") == std::string::npos);
  CHECK_THAT(a->key, StartsWith("GET http://u:***@example.com/x ~"));
  CHECK(a->key.size() == std::string("GET http://u:***@example.com/x ~").size() + 64);
  CHECK(a->key != b->key);  // another password is another request
  CHECK(parse_request_line("http://u:secret@example.com/x", {}, kind, error)->key == a->key);
  CHECK(a->request.url == "http://u:secret@example.com/x");  // still sent as given
  CHECK(aetl::secret_free_key("GET http://example.com/x") == "GET http://example.com/x");
}
