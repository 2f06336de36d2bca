#include "sources/http/secret_values.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "config/env_expand.h"

namespace aetl {

namespace {

std::string percent_encoded(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

void SecretValues::add(const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [name, value] : values) {
    if (value.empty()) continue;
    for (std::string form : {value, percent_encoded(value)})
      if (std::find(values_.begin(), values_.end(), std::pair{form, name}) == values_.end())
        values_.emplace_back(std::move(form), name);
  }
  std::stable_sort(values_.begin(), values_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::string SecretValues::replace(std::string_view text, bool escape) const {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    auto hit = std::find_if(values_.begin(), values_.end(),
                            [&](const auto& v) { return text.substr(i, v.first.size()) == v.first; });
    if (hit != values_.end()) {
      out += "${" + hit->second + "}";
      i += hit->first.size();
      continue;
    }
    if (escape && text[i] == '$') out += '$';
    out += text[i++];
  }
  return out;
}

std::string SecretValues::hide(std::string_view text) const { return replace(text, false); }

std::string SecretValues::to_template(std::string_view text) const { return replace(text, true); }

std::optional<std::string> SecretValues::reveal(std::string_view stored) {
  try {
    return expand_env(stored, process_environment()).text;
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

}  // namespace aetl
