#include "net/ws/ws_url.h"

#include <stdexcept>

namespace aetl::ws {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// %XX as the byte it stands for; a '%' not followed by two hex digits stays.
std::string percent_decoded(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = s[i] == '%' && i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
    int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

WsUrl parse_ws_url(std::string_view text) {
  WsUrl u;
  std::string_view rest;
  if (text.substr(0, 5) == "ws://") {
    rest = text.substr(5);
  } else if (text.substr(0, 6) == "wss://") {
    u.tls = true;
    rest = text.substr(6);
  } else {
    throw std::invalid_argument("not a ws:// or wss:// URL");
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (size_t hash = tail.find('#'); hash != std::string_view::npos) tail = tail.substr(0, hash);
  std::string user;
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view info = authority.substr(0, at);
    size_t colon = info.find(':');
    user = std::string(info.substr(0, colon)) + (colon == std::string_view::npos ? "" : ":***") + "@";
    u.userinfo = percent_decoded(info.substr(0, colon)) + ":" +
                 (colon == std::string_view::npos ? "" : percent_decoded(info.substr(colon + 1)));
    authority = authority.substr(at + 1);
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("an IPv6 address without its ']'");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw std::invalid_argument("junk after the IPv6 address");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) throw std::invalid_argument("no host");
  for (char c : port)
    if (c < '0' || c > '9') throw std::invalid_argument("the port is not a number");
  const char* scheme_port = u.tls ? "443" : "80";
  u.host = std::string(host);
  u.port = port.empty() ? scheme_port : std::string(port);
  std::string bracketed = host.find(':') != std::string_view::npos ? "[" + u.host + "]" : u.host;
  u.host_header = u.port == scheme_port ? bracketed : bracketed + ":" + u.port;
  if (tail.empty() || tail[0] != '/') u.target = "/" + std::string(tail);
  else u.target = std::string(tail);
  std::string path = u.target.substr(0, u.target.find('?'));
  u.shown = std::string(u.tls ? "wss://" : "ws://") + user + u.host_header + path;
  return u;
}

}  // namespace aetl::ws
