#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace aetl {

/// Small scanners over JSON text that is already known to be valid (a record the
/// source checked): they find where things start and end without decoding, so
/// stages can copy fragments as written instead of re-serialising documents.

/// The offset just past the value starting at `start` (after leading blanks).
/// For malformed text returns text.size() rather than reading past the end.
size_t json_value_end(std::string_view text, size_t start);

/// One member of an object, as offsets into the text.
struct JsonMember {
  std::string_view raw_key;  ///< the key's text between its quotes, still escaped
  size_t begin = 0;          ///< offset of the key's opening quote
  size_t value_begin = 0;
  size_t value_end = 0;
};

/// Walks the members of the object starting at `start`. `fn(const JsonMember&)` is
/// called for each; returns false if the text is not an object.
template <class Fn>
bool for_each_member(std::string_view text, size_t start, Fn&& fn);

size_t json_skip_blanks(std::string_view text, size_t pos);
/// Decodes the text between a JSON string's quotes (\" \n \u00e9 ...).
std::string json_unescape(std::string_view raw);
/// The same, appending to `out`; false on a malformed escape. A lone surrogate
/// \udc80..\udcff becomes the byte it stands for (the \udcXX escapes of invalid
/// UTF-8 read back as the bytes), any other lone surrogate its 3-byte form.
bool json_unescape_to(std::string_view raw, std::string& out);
/// True if `raw` (the text between a string's quotes) is valid JSON string content,
/// lone surrogate escapes included. Bytes >= 0x80 are not checked here.
bool json_string_content_valid(std::string_view raw);
size_t json_string_end(std::string_view text, size_t quote);  ///< past the closing quote

template <class Fn>
bool for_each_member(std::string_view text, size_t start, Fn&& fn) {
  size_t pos = json_skip_blanks(text, start);
  if (pos >= text.size() || text[pos] != '{') return false;
  pos = json_skip_blanks(text, pos + 1);
  if (pos < text.size() && text[pos] == '}') return true;
  while (pos < text.size()) {
    if (text[pos] != '"') return false;
    JsonMember m;
    m.begin = pos;
    size_t key_end = json_string_end(text, pos);
    m.raw_key = text.substr(pos + 1, key_end - pos - 2);
    pos = json_skip_blanks(text, key_end);
    if (pos >= text.size() || text[pos] != ':') return false;
    m.value_begin = json_skip_blanks(text, pos + 1);
    m.value_end = json_value_end(text, m.value_begin);
    fn(static_cast<const JsonMember&>(m));
    pos = json_skip_blanks(text, m.value_end);
    if (pos < text.size() && text[pos] == ',') {
      pos = json_skip_blanks(text, pos + 1);
      continue;
    }
    return pos < text.size() && text[pos] == '}';
  }
  return false;
}

}  // namespace aetl
