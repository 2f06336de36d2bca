#include <catch2/catch.hpp>

#include <string>

#include "net/http/url_check.h"

using aetl::check_url;
using aetl::has_line_break_or_nul;
using aetl::UrlParts;
using Catch::Contains;

namespace {

std::optional<UrlParts> check(std::string_view url, std::string* error_out = nullptr) {
  std::string error;
  auto parts = check_url(url, error);
  if (parts) {
    CHECK(error.empty());
  }
  if (error_out) *error_out = error;
  return parts;
}

std::string rejection(std::string_view url) {
  std::string error;
  auto parts = check_url(url, error);
  INFO("url: '" << url << "'");
  CHECK_FALSE(parts.has_value());
  CHECK_FALSE(error.empty());
  return error;
}

}  // namespace

TEST_CASE("an https URL is split into scheme, host, port, path and query", "[url]") {
  auto u = check("https://user:pw@example.com:8443/a/b.html?x=1&y=%20#frag");
  REQUIRE(u.has_value());
  CHECK(u->scheme == "https");
  CHECK(u->host == "example.com");
  CHECK(u->port == "8443");
  CHECK(u->path == "/a/b.html");
  CHECK(u->query == "x=1&y=%20");
  CHECK(u->host_key() == "example.com:8443");
}

TEST_CASE("an http URL without a port gets port 80, https gets 443", "[url]") {
  auto h = check("http://example.com/x");
  REQUIRE(h.has_value());
  CHECK(h->scheme == "http");
  CHECK(h->port == "80");
  CHECK(h->host_key() == "example.com:80");

  auto s = check("https://example.com/x");
  REQUIRE(s.has_value());
  CHECK(s->port == "443");

  auto odd = check("https://example.com:80/");
  REQUIRE(odd.has_value());
  CHECK(odd->port == "80");
}

TEST_CASE("a URL without a path has path '/' and an empty query", "[url]") {
  auto u = check("http://example.com");
  REQUIRE(u.has_value());
  CHECK(u->host == "example.com");
  CHECK(u->path == "/");
  CHECK(u->query.empty());
}

TEST_CASE("dot segments are removed from the path, %-encoding is kept", "[url]") {
  auto u = check("http://example.com/a/./b/../c/%2e%2e/d%20e");
  REQUIRE(u.has_value());
  CHECK(u->path.find("/./") == std::string::npos);
  CHECK(u->path.find("/../") == std::string::npos);
  CHECK(u->path.rfind("/a/c/", 0) == 0);
  CHECK(u->path.find("d%20e") != std::string::npos);

  auto escape = check("http://example.com/../../etc/passwd");
  REQUIRE(escape.has_value());
  CHECK(escape->path == "/etc/passwd");
}

TEST_CASE("IP address hosts are accepted", "[url]") {
  auto v4 = check("http://127.0.0.1:8080/health");
  REQUIRE(v4.has_value());
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == "8080");
  CHECK(v4->host_key() == "127.0.0.1:8080");

  auto v6 = check("http://[::1]:9000/");
  REQUIRE(v6.has_value());
  CHECK(v6->host == "[::1]");
  CHECK(v6->port == "9000");
}

TEST_CASE("the scheme is case-insensitive", "[url]") {
  auto u = check("HTTPS://example.com/");
  REQUIRE(u.has_value());
  CHECK(u->scheme == "https");
  CHECK(u->port == "443");
}

TEST_CASE("control characters, spaces, CR, LF and NUL are rejected", "[url]") {
  CHECK_THAT(rejection("http://example.com/a b"), Contains("space"));
  CHECK_THAT(rejection("http://exa mple.com/"), Contains("space"));
  CHECK_THAT(rejection(" http://example.com/"), Contains("space"));
  CHECK_THAT(rejection("http://example.com/\r\nHost: evil"), Contains("CR, LF or NUL"));
  CHECK_THAT(rejection("http://example.com/\n"), Contains("CR, LF or NUL"));
  CHECK_THAT(rejection("http://example.com/\r"), Contains("CR, LF or NUL"));
  CHECK_THAT(rejection(std::string_view("http://example.com/\0x", 21)), Contains("CR, LF or NUL"));
  CHECK_THAT(rejection("http://example.com/\t"), Contains("control character"));
  CHECK_THAT(rejection("http://example.com/\x01"), Contains("control character"));
  CHECK_THAT(rejection("http://example.com/\x1b[31m"), Contains("control character"));
  CHECK_THAT(rejection("http://example.com/\x7f"), Contains("control character"));
}

TEST_CASE("schemes other than http and https are rejected", "[url]") {
  for (const char* url : {"ftp://example.com/", "file:///etc/passwd", "file://localhost/etc/passwd",
                          "gopher://example.com/", "ws://example.com/", "ldap://example.com/"}) {
    std::string error = rejection(url);
    INFO("url: " << url << ", error: " << error);
    CHECK((error.find("unsupported scheme") != std::string::npos || error.find("malformed") != std::string::npos ||
           error.find("no host") != std::string::npos));
  }
  CHECK_THAT(rejection("ftp://example.com/"), Contains("unsupported scheme 'ftp'"));
}

TEST_CASE("a URL without a scheme is rejected", "[url]") {
  CHECK_THAT(rejection("example.com"), Contains("no scheme"));
  CHECK_THAT(rejection("example.com/a"), Contains("no scheme"));
  CHECK_THAT(rejection("//example.com/a"), Contains("no scheme"));
  CHECK_THAT(rejection("http:/example.com"), Contains("no scheme"));
  rejection("example.com/?next=http://other.example/");
}

TEST_CASE("an empty URL or one without a host is rejected", "[url]") {
  CHECK_THAT(rejection(""), Contains("empty"));
  CHECK_THAT(rejection("http://"), Contains("host"));
  CHECK_THAT(rejection("https://:443/"), Contains("host"));
  CHECK_THAT(rejection("https://user@/"), Contains("host"));
}

TEST_CASE("a malformed URL is rejected with libcurl's reason", "[url]") {
  CHECK(rejection("http://example.com:99999/") ==
        "malformed URL: Port number was not a decimal number between 0 and 65535");
  CHECK(rejection("http://example.com:port/") ==
        "malformed URL: Port number was not a decimal number between 0 and 65535");
  CHECK(rejection("http://[::1/") == "malformed URL: Bad IPv6 address");
}

TEST_CASE("has_line_break_or_nul finds CR, LF and NUL anywhere", "[url]") {
  CHECK_FALSE(has_line_break_or_nul(""));
  CHECK_FALSE(has_line_break_or_nul("plain text\twith tab"));
  CHECK(has_line_break_or_nul("a\rb"));
  CHECK(has_line_break_or_nul("a\n"));
  CHECK(has_line_break_or_nul(std::string_view("\0", 1)));
  CHECK(has_line_break_or_nul(std::string_view("ab\0", 3)));
}

TEST_CASE("the password of a URL is masked, the user name and the rest are kept", "[url][secrets]") {
  using aetl::mask_passwords;
  CHECK(mask_passwords("http://u:pass@h.example/a?b=c") == "http://u:***@h.example/a?b=c");
  CHECK(mask_passwords("https://u:p%40ss:w@h:8080") == "https://u:***@h:8080");
  CHECK(mask_passwords("GET http://:pw@h/x #0123") == "GET http://:***@h/x #0123");
  CHECK(mask_passwords("a http://u:1@h/ and https://v:2@i/") == "a http://u:***@h/ and https://v:***@i/");
  CHECK(mask_passwords("{\"url\":\"http://u:pw@h\"}") == "{\"url\":\"http://u:***@h\"}");
  // redis URLs: a password with '/' in it, or a password alone
  CHECK(mask_passwords("  redis: {url: \"redis://:s3cr/et@127.0.0.1:6379/0\"}") ==
        "  redis: {url: \"redis://:***@127.0.0.1:6379/0\"}");
  CHECK(mask_passwords("redis://s3cret@h/1") == "redis://***@h/1");
}

TEST_CASE("URLs without a password are left as they are", "[url][secrets]") {
  using aetl::mask_passwords;
  for (const char* text : {"http://h/a", "http://user@h:80/x", "http://u:@h/", "http://h/a?x=y:z@w", "no url at all",
                           "http://h:8080/p@q", ""})
    CHECK(mask_passwords(text) == text);
}
