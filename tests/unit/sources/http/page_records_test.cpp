#include <catch2/catch.hpp>

#include "sources/http/page_records.h"

using namespace aetl;

namespace {
JsonPath path(std::string_view text) {
  std::string error;
  auto p = parse_json_path(text, error);
  REQUIRE(p);
  return *p;
}
}  // namespace

TEST_CASE("the records of a page are the elements of the array at the path, as written", "[page_records]") {
  PageContent c;
  JsonPath next = path("meta.next");
  std::string body = R"({"data": {"results": [{"id": 1, "x": 1.50}, 7, {"id":2}]}, "meta": {"next": "abc"}})";
  REQUIRE(read_page(body, path("data.results[*]"), &next, c).empty());
  CHECK(c.records == std::vector<std::string>{R"({"id": 1, "x": 1.50})", R"({"value":7})", R"({"id":2})"});
  CHECK(c.next == "abc");
}

TEST_CASE("an object at the path is one record; the whole body by default", "[page_records]") {
  PageContent c;
  REQUIRE(read_page(R"({"a": {"id": 1}})", path("a"), nullptr, c).empty());
  CHECK(c.records == std::vector<std::string>{R"({"id": 1})"});
  REQUIRE(read_page(R"([{"id": 1}, {"id": 2}])", path(""), nullptr, c).empty());
  CHECK(c.records.size() == 2);
}

TEST_CASE("a page that is not JSON, or lacks the path, says so", "[page_records]") {
  PageContent c;
  CHECK(read_page("<html>", path("items"), nullptr, c).rfind("not JSON (", 0) == 0);
  CHECK(read_page(R"({"data": []})", path("items"), nullptr, c) == "no `items` in the response");
  CHECK(read_page(R"({"items": 3})", path("items"), nullptr, c) == "`items` is not an array or an object");
  REQUIRE(read_page(R"({"items": null})", path("items"), nullptr, c).empty());
  CHECK(c.records.empty());
}

TEST_CASE("a missing, null or empty next field means no next page; a number is its text", "[page_records]") {
  CHECK_FALSE(json_scalar_text("null"));
  CHECK_FALSE(json_scalar_text("\"\""));
  CHECK(json_scalar_text("42") == "42");
  CHECK(json_scalar_text("\"a\\\"b\"") == "a\"b");
}

TEST_CASE("a path with brackets inside is refused", "[page_records]") {
  std::string error;
  CHECK_FALSE(parse_json_path("items[0]", error));
  CHECK(error == "'items[0]' is not a path of keys separated by dots (items, data.results[*])");
}
