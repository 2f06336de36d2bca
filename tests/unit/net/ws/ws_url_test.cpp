#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "net/ws/ws_url.h"

using aetl::ws::parse_ws_url;

namespace {
std::string error_of(const std::string& url) {
  try {
    parse_ws_url(url);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("ws URLs: the scheme's port, the target with its query, the Host header", "[ws]") {
  auto u = parse_ws_url("ws://stream.example/feed?token=abc");
  CHECK_FALSE(u.tls);
  CHECK(u.host == "stream.example");
  CHECK(u.port == "80");
  CHECK(u.target == "/feed?token=abc");
  CHECK(u.host_header == "stream.example");
  auto s = parse_ws_url("wss://127.0.0.1:8443");
  CHECK(s.tls);
  CHECK(s.port == "8443");
  CHECK(s.target == "/");
  CHECK(s.host_header == "127.0.0.1:8443");
  auto v6 = parse_ws_url("ws://[::1]:9000/x#frag");
  CHECK(v6.host == "::1");
  CHECK(v6.host_header == "[::1]:9000");
  CHECK(v6.target == "/x");
  CHECK(parse_ws_url("ws://h?x=1").target == "/?x=1");
}

TEST_CASE("ws URLs are shown without their query and with the password masked", "[ws]") {
  CHECK(parse_ws_url("wss://feed.example/v1?apikey=secret").shown == "wss://feed.example/v1");
  CHECK(parse_ws_url("ws://me:pw@h:81/a").shown == "ws://me:***@h:81/a");
  CHECK(parse_ws_url("ws://me@h/a").shown == "ws://me@h/a");
}

TEST_CASE("a user and password in a ws URL are kept decoded for Basic auth", "[ws]") {
  CHECK(parse_ws_url("ws://me:p%40ss%3Aw@h/a").userinfo == "me:p@ss:w");
  CHECK(parse_ws_url("ws://me@h/a").userinfo == "me:");
  CHECK(parse_ws_url("ws://a%2:b%zz@h/").userinfo == "a%2:b%zz");
  CHECK(parse_ws_url("ws://h/a@b").userinfo.empty());
}

TEST_CASE("what is not a ws URL says why", "[ws]") {
  CHECK(error_of("http://x/") == "not a ws:// or wss:// URL");
  CHECK(error_of("ws:///path") == "no host");
  CHECK(error_of("ws://h:80x/") == "the port is not a number");
  CHECK(error_of("ws://[::1/") == "an IPv6 address without its ']'");
}
