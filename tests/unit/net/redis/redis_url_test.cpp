#include <catch2/catch.hpp>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "net/redis/redis_url.h"

using aetl::redis::parse_redis_url;
using aetl::redis::redact_redis_url;

namespace {
std::string error_of(const std::string& url) {
  try {
    parse_redis_url(url);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("redis URLs: host, port, database, user and password", "[redis]") {
  ::unsetenv("REDISCLI_AUTH");
  auto u = parse_redis_url("redis://queue.internal");
  CHECK(u.host == "queue.internal");
  CHECK(u.port == 6379);
  CHECK(u.db == 0);
  CHECK(u.password.empty());
  CHECK(u.where() == "queue.internal:6379/0");

  u = parse_redis_url("redis://alice:p%40ss:w@10.0.0.5:6380/3");
  CHECK(u.user == "alice");
  CHECK(u.password == "p@ss:w");
  CHECK(u.port == 6380);
  CHECK(u.db == 3);
  CHECK(u.where() == "10.0.0.5:6380/3");

  u = parse_redis_url("redis://:s3cr/e@t@h:1/2");  // '/' and '@' in a password: up to the last '@'
  CHECK(u.password == "s3cr/e@t");
  CHECK(u.host == "h");
  CHECK(u.db == 2);

  u = parse_redis_url("redis://:only-pw@h:1/");
  CHECK(u.user.empty());
  CHECK(u.password == "only-pw");
  CHECK(u.db == 0);

  u = parse_redis_url("redis://[::1]:7000/1");
  CHECK(u.host == "::1");
  CHECK(u.where() == "[::1]:7000/1");

  u = parse_redis_url("unix:/run/redis/redis.sock?db=2");
  CHECK(u.socket_path == "/run/redis/redis.sock");
  CHECK(u.db == 2);
  CHECK(u.where() == "unix:/run/redis/redis.sock/2");
  CHECK(parse_redis_url("unix:///tmp/r.sock").socket_path == "/tmp/r.sock");
}

TEST_CASE("redis URLs: the password comes from REDISCLI_AUTH when the URL has none", "[redis]") {
  ::setenv("REDISCLI_AUTH", "from-env", 1);
  CHECK(parse_redis_url("redis://h").password == "from-env");
  CHECK(parse_redis_url("redis://:in-url@h").password == "in-url");
  ::unsetenv("REDISCLI_AUTH");
}

TEST_CASE("redis URLs: what is wrong is said, the password never", "[redis]") {
  CHECK(error_of("http://h") ==
        "redis URL 'http://h': expected redis://[user:password@]host[:port][/db] or unix:/path/to/socket (no TLS: "
        "rediss:// is not supported)");
  CHECK(error_of("redis://:secret@h:99999") == "redis URL 'redis://:***@h:99999': the port must be a number from 1 to 65535");
  CHECK(error_of("redis://bob:secret@h:/0") == "redis URL 'redis://bob:***@h:/0': the port is empty");
  CHECK(error_of("redis://h:6379/zero") == "redis URL 'redis://h:6379/zero': the database after the / must be a whole number");
  CHECK(error_of("redis://:6379") == "redis URL 'redis://:6379': the host is empty");
  CHECK(error_of("redis://[::1:6379") == "redis URL 'redis://[::1:6379': an IPv6 address needs its closing ]");
  CHECK(error_of("redis://u:%zz@h") == "redis URL 'redis://u:***@h': a % in the user or password must start a %XX escape");
  CHECK(error_of("unix:relative.sock") == "redis URL 'unix:relative.sock': expected unix:/path/to/socket");
  CHECK(error_of("unix:/r.sock?timeout=1") ==
        "redis URL 'unix:/r.sock?timeout=1': the only query a unix socket takes is db=N (a whole number)");
  CHECK(redact_redis_url("redis://a:b@h/1") == "redis://a:***@h/1");
  CHECK(redact_redis_url("redis://:s3cr/et@h:1/0") == "redis://:***@h:1/0");
  CHECK(redact_redis_url("redis://s3cr/et?#@h") == "redis://***@h");
  CHECK(error_of("redis://:s3cr/et@h:0") == "redis URL 'redis://:***@h:0': the port must be a number from 1 to 65535");
  CHECK(redact_redis_url("redis://h/1") == "redis://h/1");
}
