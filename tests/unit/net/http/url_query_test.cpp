#include <catch2/catch.hpp>

#include "net/http/url_query.h"

using aetl::resolve_url;
using aetl::with_query_param;

TEST_CASE("a query parameter is appended, or replaces one of the same name", "[url_query]") {
  CHECK(with_query_param("http://h/items", "page", "2") == "http://h/items?page=2");
  CHECK(with_query_param("http://h/items?per_page=10", "page", "2") == "http://h/items?per_page=10&page=2");
  CHECK(with_query_param("http://h/items?page=1&per_page=10#top", "page", "2") ==
        "http://h/items?per_page=10&page=2#top");
}

TEST_CASE("a parameter's value is URL-encoded", "[url_query]") {
  CHECK(with_query_param("http://h/i", "cursor", "a b/c=&+") == "http://h/i?cursor=a%20b%2Fc%3D%26%2B");
}

TEST_CASE("a relative next URL is resolved against the page's", "[url_query]") {
  std::string error;
  CHECK(resolve_url("http://h:8/v1/items?page=1", "?page=2", error) == "http://h:8/v1/items?page=2");
  CHECK(resolve_url("http://h:8/v1/items?page=1", "/v2/x", error) == "http://h:8/v2/x");
  CHECK(resolve_url("http://h:8/v1/items", "https://other/y", error) == "https://other/y");
}
