#include "net/redis/redis_url.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace aetl::redis {
namespace {

bool whole_number(std::string_view s, long max, long& out) {
  if (s.empty() || s.size() > 9) return false;
  long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0 || v > max) return false;
  out = v;
  return true;
}

/// %XX escapes in the user and password (a password may hold '@' or ':').
std::string percent_decoded(std::string_view s, bool& ok) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    if (i + 2 >= s.size() || !hex(s[i + 1]) || !hex(s[i + 2])) {
      ok = false;
      return out;
    }
    out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

}  // namespace

std::string RedisUrl::where() const {
  if (!socket_path.empty()) return "unix:" + socket_path + "/" + std::to_string(db);
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port) + "/" + std::to_string(db);
}

std::string redact_redis_url(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  size_t start = scheme + 3;
  size_t at = url.rfind('@');  // the last: a password may hold '/', '?', '#' or '@'
  if (at == std::string_view::npos || at < start) return std::string(url);
  std::string_view userinfo = url.substr(start, at - start);
  size_t colon = userinfo.find(':');
  std::string redacted(url.substr(0, start));
  if (colon == std::string_view::npos) redacted += "***";  // redis://password@host
  else redacted += std::string(userinfo.substr(0, colon)) + ":***";
  redacted += url.substr(at);
  return redacted;
}

RedisUrl parse_redis_url(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("redis URL '" + redact_redis_url(url) + "': " + why);
  };
  RedisUrl u;
  long n = 0;
  if (url.rfind("unix:", 0) == 0) {
    std::string_view rest = url.substr(5);
    if (rest.rfind("//", 0) == 0) rest.remove_prefix(2);
    size_t q = rest.find('?');
    std::string_view query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
    rest = rest.substr(0, q);
    if (rest.empty() || rest.front() != '/') throw bad("expected unix:/path/to/socket");
    u.socket_path = std::string(rest);
    if (!query.empty()) {
      if (query.rfind("db=", 0) != 0 || !whole_number(query.substr(3), 1 << 20, n))
        throw bad("the only query a unix socket takes is db=N (a whole number)");
      u.db = static_cast<int>(n);
    }
  } else if (url.rfind("redis://", 0) == 0) {
    std::string_view rest = url.substr(8);
    size_t at = rest.rfind('@');  // the last: a password may hold '/' or '@' (better escaped as %2F, %40)
    std::string_view userinfo;
    if (at != std::string_view::npos) {
      userinfo = rest.substr(0, at);
      rest = rest.substr(at + 1);
    }
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (at != std::string_view::npos) {
      size_t colon = userinfo.find(':');
      bool ok = true;
      if (colon == std::string_view::npos) {
        u.password = percent_decoded(userinfo, ok);
      } else {
        u.user = percent_decoded(userinfo.substr(0, colon), ok);
        u.password = percent_decoded(userinfo.substr(colon + 1), ok);
      }
      if (!ok) throw bad("a % in the user or password must start a %XX escape");
    }
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {  // [::1]:6379
      size_t close = authority.find(']');
      if (close == std::string_view::npos) throw bad("an IPv6 address needs its closing ]");
      u.host = std::string(authority.substr(1, close - 1));
      std::string_view after = authority.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') throw bad("expected :PORT after the IPv6 address");
        port = after.substr(1);
        if (port.empty()) throw bad("the port is empty");
      }
    } else {
      size_t colon = authority.rfind(':');
      u.host = std::string(authority.substr(0, colon));
      if (colon != std::string_view::npos) {
        port = authority.substr(colon + 1);
        if (port.empty()) throw bad("the port is empty");
      }
    }
    if (u.host.empty()) throw bad("the host is empty");
    if (!port.empty()) {
      if (!whole_number(port, 65535, n) || n == 0) throw bad("the port must be a number from 1 to 65535");
      u.port = static_cast<uint16_t>(n);
    }
    if (!path.empty()) {
      if (!whole_number(path, 1 << 20, n)) throw bad("the database after the / must be a whole number");
      u.db = static_cast<int>(n);
    }
  } else {
    throw bad("expected redis://[user:password@]host[:port][/db] or unix:/path/to/socket (no TLS: rediss:// is not supported)");
  }
  if (u.password.empty()) {
    if (const char* env = std::getenv("REDISCLI_AUTH")) u.password = env;
  }
  return u;
}

}  // namespace aetl::redis
