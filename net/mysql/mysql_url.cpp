#include "net/mysql/mysql_url.h"

#include <cstdlib>
#include <string>

namespace aetl::mysql {
namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int a = hex(in[i + 1]), b = hex(in[i + 2]);
    if (a < 0 || b < 0) return false;
    out += static_cast<char>(a * 16 + b);
    i += 2;
  }
  return true;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

}  // namespace

std::string MysqlUrl::where() const {
  if (!socket.empty()) return "socket " + socket + "/" + database;
  return host + ":" + std::to_string(port) + "/" + database;
}

std::optional<MysqlUrl> parse_mysql_url(std::string_view url, std::string& error) {
  MysqlUrl u;
  std::string_view rest = url;
  bool have_port = false;
  if (!url.empty()) {
    size_t scheme = url.find("://");
    std::string_view name = scheme == std::string_view::npos ? std::string_view() : url.substr(0, scheme);
    if (name != "mysql" && name != "mariadb") {
      error = "the url must start with mysql:// or mariadb://";
      return std::nullopt;
    }
    rest = url.substr(scheme + 3);
    // The user information ends at the last @: a password with an unescaped /,
    // ? or @ stays in it rather than spilling into the host (and into messages).
    std::string_view userinfo;
    bool has_userinfo = false;
    if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
      userinfo = rest.substr(0, at);
      rest = rest.substr(at + 1);
      has_userinfo = true;
    }
    std::string_view query;
    if (size_t q = rest.find('?'); q != std::string_view::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    std::string_view path;
    if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
      path = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
    }
    if (has_userinfo) {
      std::string_view user = userinfo, password;
      bool has_password = false;
      if (size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
        user = userinfo.substr(0, colon);
        password = userinfo.substr(colon + 1);
        has_password = true;
      }
      std::string decoded;
      if (!percent_decode(user, u.user)) {
        error = "the url's user name has a bad % escape";
        return std::nullopt;
      }
      if (has_password) {
        if (!percent_decode(password, decoded)) {
          error = "the url's password has a bad % escape";
          return std::nullopt;
        }
        u.password = decoded;
      }
    }
    std::string_view host = rest;
    if (!host.empty() && host.front() == '[') {  // [::1]:3306
      size_t close = host.find(']');
      if (close == std::string_view::npos) {
        error = "the url's host has no closing ]";
        return std::nullopt;
      }
      u.host = std::string(host.substr(1, close - 1));
      host = host.substr(close + 1);
      if (!host.empty() && host.front() != ':') {
        error = "the url's host is not followed by :port";
        return std::nullopt;
      }
      if (!host.empty()) have_port = true;
      rest = host.empty() ? host : host.substr(1);
    } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
      u.host = std::string(host.substr(0, colon));
      rest = host.substr(colon + 1);
      have_port = true;
    } else {
      u.host = std::string(host);
      rest = {};
    }
    if (have_port) {
      std::string p(rest);
      char* end = nullptr;
      long n = std::strtol(p.c_str(), &end, 10);
      if (p.empty() || *end || n < 1 || n > 65535) {
        error = "the url's port is not a number from 1 to 65535";
        return std::nullopt;
      }
      u.port = static_cast<unsigned>(n);
    }
    if (!percent_decode(path, u.database)) {
      error = "the url's database name has a bad % escape";
      return std::nullopt;
    }
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      size_t eq = pair.find('=');
      std::string_view key = pair.substr(0, eq);
      std::string value;
      if (eq == std::string_view::npos || !percent_decode(pair.substr(eq + 1), value)) {
        error = "the url's parameter '" + std::string(key) + "' has no value";
        return std::nullopt;
      }
      if (key == "socket") {
        u.socket = value;
      } else {
        error = "the url's parameter '" + std::string(key) + "' is not known (socket is)";
        return std::nullopt;
      }
    }
  }
  if (u.host.empty()) u.host = env("MYSQL_HOST") ? env("MYSQL_HOST") : "localhost";
  if (!have_port && env("MYSQL_TCP_PORT")) {
    char* end = nullptr;
    long n = std::strtol(env("MYSQL_TCP_PORT"), &end, 10);
    if (*end || n < 1 || n > 65535) {
      error = "MYSQL_TCP_PORT is not a number from 1 to 65535";
      return std::nullopt;
    }
    u.port = static_cast<unsigned>(n);
  }
  if (!u.password && env("MYSQL_PWD")) u.password = env("MYSQL_PWD");
  if (u.user.empty()) {
    const char* who = env("USER") ? env("USER") : env("LOGNAME");
    u.user = who ? who : "root";
  }
  return u;
}

}  // namespace aetl::mysql
