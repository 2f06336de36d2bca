#include "pipeline/json_scan.h"

#include <cstring>

#include <simdjson.h>

namespace aetl {

size_t json_skip_blanks(std::string_view text, size_t pos) {
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r'))
    ++pos;
  return pos;
}

std::string json_unescape(std::string_view raw) {
  if (raw.find('\\') == std::string_view::npos) return std::string(raw);
  std::string quoted = "\"" + std::string(raw) + "\"";
  simdjson::dom::parser parser;
  std::string_view out;
  if (parser.parse(quoted).get_string().get(out)) return std::string(raw);
  return std::string(out);
}

size_t json_string_end(std::string_view text, size_t quote) {
  size_t pos = quote + 1;
  while (pos < text.size()) {
    const void* hit = std::memchr(text.data() + pos, '"', text.size() - pos);
    if (!hit) return text.size();
    size_t q = static_cast<size_t>(static_cast<const char*>(hit) - text.data());
    // an escaped quote is preceded by an odd number of backslashes
    size_t backslashes = 0;
    while (q - backslashes > quote + 1 && text[q - backslashes - 1] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return q + 1;
    pos = q + 1;
  }
  return text.size();
}

size_t json_value_end(std::string_view text, size_t start) {
  size_t pos = json_skip_blanks(text, start);
  if (pos >= text.size()) return text.size();
  char c = text[pos];
  if (c == '"') return json_string_end(text, pos);
  if (c != '{' && c != '[') {  // a number, true, false or null: up to the next delimiter
    while (pos < text.size() && !std::strchr(",]} \t\r\n", text[pos])) ++pos;
    return pos;
  }
  int depth = 0;
  while (pos < text.size()) {
    char ch = text[pos];
    if (ch == '"') {
      pos = json_string_end(text, pos);
      continue;
    }
    if (ch == '{' || ch == '[') ++depth;
    if (ch == '}' || ch == ']') {
      if (--depth == 0) return pos + 1;
    }
    ++pos;
  }
  return text.size();
}

}  // namespace aetl
