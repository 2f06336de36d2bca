#include "config/env_expand.h"

#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace aetl {
namespace {

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

[[noreturn]] void fail(size_t offset, size_t* error_offset, const std::string& message) {
  if (error_offset) *error_offset = offset;
  throw std::invalid_argument(message);
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

Expanded expand_env(std::string_view text, const EnvLookup& lookup, size_t* error_offset) {
  Expanded out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c != '$' || i + 1 >= text.size() || (text[i + 1] != '{' && text[i + 1] != '$')) {
      out.text += c;
      ++i;
      continue;
    }
    if (text[i + 1] == '$') {
      out.text += '$';
      i += 2;
      continue;
    }
    size_t start = i;
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) fail(start, error_offset, "unterminated '${' (expected ${NAME} or ${NAME:-default})");
    std::string_view inner = text.substr(i + 2, close - i - 2);
    std::string_view name = inner;
    std::optional<std::string_view> fallback;
    if (auto sep = inner.find(":-"); sep != std::string_view::npos) {
      name = inner.substr(0, sep);
      fallback = inner.substr(sep + 2);
    }
    bool valid = !name.empty() && name_start(name[0]);
    for (char n : name) valid = valid && name_char(n);
    if (!valid) fail(start, error_offset, "invalid variable name '" + std::string(name) + "' in ${...}");
    std::optional<std::string> value = lookup(std::string(name));
    if (value && (!value->empty() || !fallback)) {  // as the shell: ':-' also replaces an empty value
      out.text += *value;
      out.used_variables = true;
      out.values.emplace_back(std::string(name), *value);
    } else if (fallback) {
      out.text += *fallback;
    } else {
      fail(start, error_offset, "environment variable " + std::string(name) + " is not set (use ${" +
                                    std::string(name) + ":-default} for a default)");
    }
    i = close + 1;
  }
  return out;
}

}  // namespace aetl
