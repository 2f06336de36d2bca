#include "engine/json_writer.h"

#include <cstdio>

#include "engine/byte_scan.h"

namespace aetl {
namespace {

constexpr char kHex[] = "0123456789abcdef";

/// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = s.size() - i;
  auto cont = [&](size_t k) { return (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return n >= 2 && cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0;
    return 4;
  }
  return 0;
}

void append_u_escape(std::string& out, unsigned code) {
  out += "\\u";
  out += kHex[(code >> 12) & 0xF];
  out += kHex[(code >> 8) & 0xF];
  out += kHex[(code >> 4) & 0xF];
  out += kHex[code & 0xF];
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  size_t plain_start = 0;
  size_t i = find_json_special(s, 0);
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (size_t len = utf8_sequence_length(s, i)) {
        i = find_json_special(s, i + len);
        continue;
      }
      out.append(s.data() + plain_start, i - plain_start);
      append_u_escape(out, 0xDC00 | c);
      plain_start = ++i;
      i = find_json_special(s, i);
      continue;
    }
    out.append(s.data() + plain_start, i - plain_start);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: append_u_escape(out, c);
    }
    plain_start = ++i;
    i = find_json_special(s, i);
  }
  out.append(s.data() + plain_start, s.size() - plain_start);
  out.push_back('"');
}

bool escape_invalid_utf8_in_strings(std::string_view json, std::string& out) {
  out.clear();
  out.reserve(json.size() + 16);
  bool in_string = false;
  bool escaped = false;
  for (size_t i = 0; i < json.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(json[i]);
    if (in_string && c >= 0x80) {
      if (size_t len = utf8_sequence_length(json, i)) {
        out.append(json.substr(i, len));
        i += len - 1;
      } else {
        append_u_escape(out, 0xDC00 | c);
        escaped = true;
      }
      continue;
    }
    out += static_cast<char>(c);
    if (c == '"') {
      in_string = !in_string;
    } else if (c == '\\' && in_string && i + 1 < json.size()) {
      out += json[++i];
    }
  }
  return escaped;
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ > 0) {
    uint64_t bit = uint64_t{1} << depth_;
    if (first_bits_ & bit)
      first_bits_ &= ~bit;
    else
      out_.push_back(',');
  }
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  out_.push_back('{');
  ++depth_;
  first_bits_ |= uint64_t{1} << depth_;
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_.push_back('}');
  --depth_;
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  out_.push_back('[');
  ++depth_;
  first_bits_ |= uint64_t{1} << depth_;
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  out_.push_back(']');
  --depth_;
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  before_value();
  append_json_string(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view v) {
  before_value();
  append_json_string(out_, v);
  return *this;
}

JsonWriter& JsonWriter::number(int64_t v) {
  before_value();
  out_ += std::to_string(v);
  return *this;
}

JsonWriter& JsonWriter::number(double v, int decimals) {
  before_value();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  out_ += buf;
  return *this;
}

JsonWriter& JsonWriter::boolean(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  before_value();
  out_.append(json);
  return *this;
}

}  // namespace aetl
