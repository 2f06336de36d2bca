#include "net/http/link_header.h"

#include <algorithm>
#include <cctype>

namespace aetl {

namespace {

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// True if the space-separated relation types in `value` hold `rel`.
bool has_rel(std::string_view value, std::string_view rel) {
  while (!value.empty()) {
    size_t sp = value.find(' ');
    if (equals_nocase(value.substr(0, sp), rel)) return true;
    if (sp == std::string_view::npos) break;
    value.remove_prefix(sp + 1);
  }
  return false;
}

}  // namespace

std::optional<std::string> link_target(std::string_view header, std::string_view rel) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t open = header.find('<', pos);
    if (open == std::string_view::npos) return std::nullopt;
    size_t close = header.find('>', open);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view target = header.substr(open + 1, close - open - 1);
    // The parameters run to the next link: a ',' outside quotes.
    size_t at = close + 1;
    bool quoted = false;
    size_t end = at;
    for (; end < header.size(); ++end) {
      if (header[end] == '"') quoted = !quoted;
      else if (header[end] == ',' && !quoted) break;
    }
    std::string_view params = header.substr(at, end - at);
    while (!params.empty()) {
      size_t semi = params.find(';');
      std::string_view param = trim(params.substr(0, semi));
      params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
      size_t eq = param.find('=');
      if (eq == std::string_view::npos || !equals_nocase(trim(param.substr(0, eq)), "rel")) continue;
      std::string_view value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      if (has_rel(trim(value), rel)) return std::string(trim(target));
    }
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace aetl
