#include "engine/record_decoder.h"

#include <simdjson.h>

#include <algorithm>

#include "engine/parsed_record.h"
#include "engine/json_memory.h"
#include "engine/json_scan.h"
#include "engine/json_writer.h"

namespace aetl {

struct RecordDecoder::Validator {
  simdjson::dom::parser parser;  // the library's runtime-dispatched SIMD kernels
  std::string padded;
  expr::ParsedRecord parsed;     // the last line checked, for the first step to read
  simdjson::ondemand::parser walker;  // the check of lines the parse refused
  std::string rewritten;              // such a line with its invalid UTF-8 escaped
  std::string walked;                 // a padded copy for the walker

  simdjson::error_code parse(std::string_view text, bool padded_in_place) {
    const char* at = text.data();
    if (!padded_in_place) {
      padded.assign(text);
      padded.resize(text.size() + simdjson::SIMDJSON_PADDING);
      at = padded.data();
    }
    return parse_or_throw(parser, [&] { return parser.parse(at, text.size(), false).get(parsed.root); });
  }
};

RecordDecoder::RecordDecoder(DecoderOptions options)
    : options_(options), validator_(std::make_unique<Validator>()) {}
RecordDecoder::~RecordDecoder() = default;

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}
}  // namespace

bool is_json_number(std::string_view s) {
  size_t i = 0, n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == d) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == d) return false;
  }
  return i == n;
}

CsvSplit split_csv(std::string_view text, char delimiter, std::vector<std::string>& fields, size_t* bad_at) {
  fields.clear();
  fields.emplace_back();
  bool quoted = false;
  bool closed = false;  // a quoted field just ended
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c != '"') {
        fields.back() += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else {
        quoted = false;
        closed = true;
      }
    } else if (c == delimiter) {
      fields.emplace_back();
      closed = false;
    } else if (closed) {
      if (bad_at) *bad_at = i;
      return CsvSplit::after_quote;
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else {
      fields.back() += c;
    }
  }
  return quoted ? CsvSplit::open_quote : CsvSplit::whole;
}

namespace {
/// "line L, column C" of byte `at` of a record whose first line is `first_line`.
std::string csv_place(std::string_view text, size_t at, uint64_t first_line) {
  std::string_view before = text.substr(0, at);
  uint64_t line = first_line + static_cast<uint64_t>(std::count(before.begin(), before.end(), '\n'));
  size_t nl = before.rfind('\n');
  size_t column = at - (nl == std::string_view::npos ? 0 : nl + 1) + 1;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}
}  // namespace

void RecordDecoder::set_header_line(std::string_view line) {
  header_.clear();
  split_csv(line, options_.delimiter, fields_);
  for (auto& f : fields_) {
    std::string key;
    append_json_string(key, f);
    header_.push_back(key + ":");
  }
}

Decoded RecordDecoder::decode_csv(std::string_view line, uint64_t number, bool crlf) {
  Decoded d;
  line_number_ = number;
  std::string_view text = line;
  if (carry_.empty()) {
    record_line_ = number;
  } else {
    carry_.append(line);
    text = carry_;
  }
  if (text.empty()) {
    d.kind = Decoded::skip;
    return d;
  }
  size_t bad_at = 0;
  CsvSplit split = split_csv(text, options_.delimiter, fields_, &bad_at);
  if (split == CsvSplit::open_quote) {
    if (carry_.empty()) carry_.assign(line);
    carry_ += crlf ? "\r\n" : "\n";
    d.kind = Decoded::more;
    return d;
  }
  if (split == CsvSplit::after_quote) {
    d.kind = Decoded::error;
    d.data = "unexpected character after the closing quote of a CSV field at " + csv_place(text, bad_at, record_line_);
    carry_.clear();
    return d;
  }
  if (header_.empty()) {
    set_header_line(text);
    carry_.clear();
    d.kind = Decoded::skip;
    return d;
  }
  if (fields_.size() != header_.size()) {
    d.kind = Decoded::error;
    d.data = "expected " + std::to_string(header_.size()) + " fields (as in the header), got " +
             std::to_string(fields_.size());
    carry_.clear();
    return d;
  }
  d.kind = Decoded::record;
  d.data.reserve(text.size() + 16 * header_.size());
  d.data += '{';
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i) d.data += ',';
    d.data += header_[i];
    if (options_.infer_types && is_json_number(fields_[i])) d.data += fields_[i];
    else append_json_string(d.data, fields_[i]);
  }
  d.data += '}';
  carry_.clear();
  return d;
}

const expr::ParsedRecord* RecordDecoder::last_parsed() const { return has_parsed_ ? &validator_->parsed : nullptr; }

Decoded RecordDecoder::decode(std::string_view line, bool padded) {
  has_parsed_ = false;
  Decoded d;
  switch (options_.format) {
    case LineFormat::text:
      d.kind = Decoded::record;
      d.data.reserve(line.size() + 12);
      d.data = "{\"line\":";
      append_json_string(d.data, line);
      d.data += '}';
      return d;
    case LineFormat::csv: return decode_csv(line, line_number_ + 1, false);
    case LineFormat::json: break;
  }
  std::string_view t = trim(line);
  if (t.empty()) return d;  // blank lines are skipped
  if (t.front() != '{') {
    d.kind = Decoded::error;
    d.data = "not a JSON object";
    return d;
  }
  if (options_.validate) {
    auto err = validator_->parse(t, padded);
    if (err) return recheck(t, err);
    has_parsed_ = true;
  }
  d.kind = Decoded::record;  // data left empty: the caller keeps its own copy of the line
  last_trimmed_ = t;
  return d;
}

namespace {

namespace od = simdjson::ondemand;

std::string_view trim_token(std::string_view t) {
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
  return t;
}

bool valid_string_token(std::string_view token) {
  token = trim_token(token);
  return token.size() >= 2 && token.front() == '"' && token.back() == '"' &&
         json_string_content_valid(token.substr(1, token.size() - 2));
}

bool walk_valid(od::value v);

bool walk_valid_object(od::object obj) {
  for (auto field_result : obj) {
    od::field field;
    if (std::move(field_result).get(field)) return false;
    const char* k = field.key().raw();  // the key's text, up to its closing quote
    const char* p = k;
    while (*p != '"') p += *p == '\\' ? 2 : 1;
    if (!json_string_content_valid(std::string_view(k, static_cast<size_t>(p - k)))) return false;
    if (!walk_valid(field.value())) return false;
  }
  return true;
}

/// Checks a value as written: what the DOM parse refuses but JSON allows
/// (numbers beyond 64 bits or a double, lone surrogate escapes) passes.
bool walk_valid(od::value v) {
  od::json_type type;
  if (v.type().get(type)) return false;
  switch (type) {
    case od::json_type::object: {
      od::object obj;
      return !v.get_object().get(obj) && walk_valid_object(obj);
    }
    case od::json_type::array: {
      od::array arr;
      if (v.get_array().get(arr)) return false;
      for (auto element : arr) {
        od::value x;
        if (std::move(element).get(x) || !walk_valid(x)) return false;
      }
      return true;
    }
    case od::json_type::string: return valid_string_token(v.raw_json_token());
    case od::json_type::number: return is_json_number(trim_token(v.raw_json_token()));
    case od::json_type::boolean: {
      bool b = false;
      return !v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool null = false;
      return !v.is_null().get(null) && null;
    }
  }
  return false;
}

}  // namespace

Decoded RecordDecoder::recheck(std::string_view line, int parse_error) {
  auto& v = *validator_;
  auto err = static_cast<simdjson::error_code>(parse_error);
  Decoded d;
  bool rewritten = false;
  if (err == simdjson::UTF8_ERROR && escape_invalid_utf8_in_strings(line, v.rewritten)) {
    rewritten = true;
    line = v.rewritten;
    err = v.parse(line, false);
    has_parsed_ = !err;
  }
  if (err == simdjson::NUMBER_ERROR || err == simdjson::STRING_ERROR) {
    v.walked.assign(line);
    v.walked.resize(line.size() + simdjson::SIMDJSON_PADDING);
    od::document doc;
    od::object obj;
    auto walk = parse_or_throw(v.walker, [&] { return v.walker.iterate(v.walked.data(), line.size(), v.walked.size()).get(doc); });
    if (!walk && !doc.get_object().get(obj) && walk_valid_object(obj) && json_value_end(line, 0) == line.size())
      err = simdjson::SUCCESS;
  }
  if (err) {
    has_parsed_ = false;
    d.kind = Decoded::error;
    d.data = std::string("invalid JSON: ") + simdjson::error_message(err);
    return d;
  }
  d.kind = Decoded::record;
  if (rewritten) d.data = v.rewritten;
  else last_trimmed_ = line;
  return d;
}

}  // namespace aetl
