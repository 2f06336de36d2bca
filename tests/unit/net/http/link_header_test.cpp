#include <catch2/catch.hpp>

#include "net/http/link_header.h"

using aetl::link_target;

TEST_CASE("the next link is found among several, quoted or not", "[link_header]") {
  std::string h = "<https://api.x/items?page=1>; rel=\"first\", <https://api.x/items?page=3>; rel=\"next\", "
                  "</items?page=9>; rel=last";
  CHECK(link_target(h, "next") == "https://api.x/items?page=3");
  CHECK(link_target(h, "last") == "/items?page=9");
  CHECK_FALSE(link_target(h, "prev"));
}

TEST_CASE("a link with several relation types and other parameters counts for each", "[link_header]") {
  CHECK(link_target("<b?c=1,2>; title=\"a, b; c\"; REL=\"prev next\"", "next") == "b?c=1,2");
}

TEST_CASE("no header or a malformed one has no next link", "[link_header]") {
  CHECK_FALSE(link_target("", "next"));
  CHECK_FALSE(link_target("<https://x/; rel=next", "next"));
  CHECK_FALSE(link_target("https://x/; rel=next", "next"));
}
