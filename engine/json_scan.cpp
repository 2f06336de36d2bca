#include "engine/json_scan.h"

#include <cstring>

namespace aetl {

size_t json_skip_blanks(std::string_view text, size_t pos) {
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r'))
    ++pos;
  return pos;
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// The code unit of the \uXXXX escape at raw[i] (the backslash), or -1.
long u_escape_at(std::string_view raw, size_t i) {
  if (i + 6 > raw.size() || raw[i] != '\\' || raw[i + 1] != 'u') return -1;
  long code = 0;
  for (size_t k = i + 2; k < i + 6; ++k) {
    int h = hex_digit(raw[k]);
    if (h < 0) return -1;
    code = code * 16 + h;
  }
  return code;
}

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

bool json_unescape_to(std::string_view raw, std::string& out) {
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i + 1 >= raw.size()) return false;
    char e = raw[++i];
    switch (e) {
      case '"': case '\\': case '/': out += e; continue;
      case 'b': out += '\b'; continue;
      case 'f': out += '\f'; continue;
      case 'n': out += '\n'; continue;
      case 'r': out += '\r'; continue;
      case 't': out += '\t'; continue;
      case 'u': break;
      default: return false;
    }
    long code = u_escape_at(raw, i - 1);
    if (code < 0) return false;
    i += 4;
    long low = code >= 0xD800 && code < 0xDC00 ? u_escape_at(raw, i + 1) : -1;
    if (low >= 0xDC00 && low < 0xE000) {
      append_utf8(out, 0x10000 + ((static_cast<unsigned long>(code) - 0xD800) << 10) + (static_cast<unsigned long>(low) - 0xDC00));
      i += 6;
    } else if (code >= 0xDC80 && code <= 0xDCFF) {
      out += static_cast<char>(code & 0xFF);
    } else {
      append_utf8(out, static_cast<unsigned long>(code));
    }
  }
  return true;
}

bool json_string_content_valid(std::string_view raw) {
  for (size_t i = 0; i < raw.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c < 0x20 || c == '"') return false;
    if (c != '\\') continue;
    if (i + 1 >= raw.size()) return false;
    char e = raw[i + 1];
    if (e == 'u') {
      if (u_escape_at(raw, i) < 0) return false;
      i += 5;
    } else if (std::strchr("\"\\/bfnrt", e) && e != 0) {
      ++i;
    } else {
      return false;
    }
  }
  return true;
}

std::string json_unescape(std::string_view raw) {
  if (raw.find('\\') == std::string_view::npos) return std::string(raw);
  std::string out;
  if (!json_unescape_to(raw, out)) return std::string(raw);
  return out;
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
