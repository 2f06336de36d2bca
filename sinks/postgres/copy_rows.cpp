#include "sinks/postgres/copy_rows.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>

#include "engine/byte_scan.h"
#include "expr/expression.h"

namespace aetl {
namespace {

/// COPY's text format: backslash, newline, carriage return and tab are escaped.
void append_copy_text(std::string& out, std::string_view s) {
  size_t plain = 0;
  for (size_t i = find_copy_special(s, 0); i < s.size(); i = find_copy_special(s, i + 1)) {
    char c = s[i];
    out.append(s.data() + plain, i - plain);
    out += c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t";
    plain = i + 1;
  }
  out.append(s.data() + plain, s.size() - plain);
}

/// How binary COPY sends a column of SQL type `type` (as the server spells it, or as declared).
BinaryKind binary_kind(std::string type) {
  for (char& ch : type) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  // varchar(n) is varchar; varchar(n)[] is an array (other).
  if (auto paren = type.find('('); paren != std::string::npos && type.back() == ')' &&
      (type.rfind("character varying", 0) == 0 || type.rfind("varchar", 0) == 0) &&
      type.find_first_not_of("0123456789", paren + 1) == type.size() - 1)
    type.resize(paren);
  if (type == "smallint" || type == "int2") return BinaryKind::int2;
  if (type == "integer" || type == "int" || type == "int4") return BinaryKind::int4;
  if (type == "bigint" || type == "int8") return BinaryKind::int8;
  if (type == "double precision" || type == "float8") return BinaryKind::float8;
  if (type == "boolean" || type == "bool") return BinaryKind::boolean;
  if (type == "text" || type == "character varying" || type == "varchar") return BinaryKind::text;
  if (type == "json") return BinaryKind::json;
  if (type == "jsonb") return BinaryKind::jsonb;
  return BinaryKind::other;  // numeric, timestamps, real (rounding twice), ...: sent as text
}

template <class T>
void append_big_endian(std::string& out, T v) {
  char b[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<char>(static_cast<uint64_t>(v) >> (8 * (sizeof(T) - 1 - i)));
  out.append(b, sizeof(T));
}

/// A number with a fraction part of zero (1.0, 1e3, -0.0) for an integer column:
/// the integer (as the sink has always sent it), when it fits int64.
bool as_whole(const expr::Value& v, BinaryKind kind, int64_t& out) {
  bool integer_column = kind == BinaryKind::int2 || kind == BinaryKind::int4 || kind == BinaryKind::int8;
  if (!integer_column || v.type != expr::Value::Type::number || !std::isfinite(v.d) || v.d != std::trunc(v.d)) return false;
  if (v.d < -9.2e18 || v.d > 9.2e18) return false;
  out = static_cast<int64_t>(v.d);
  return true;
}

/// The value as COPY's text format spells it before escaping (nullopt: NULL),
/// in `scratch` unless it is the value's own text.
std::optional<std::string_view> value_text(const expr::Value& v, BinaryKind kind, bool json, std::string& scratch) {
  char num[32];
  if (int64_t i = 0; as_whole(v, kind, i)) {  // 1.0 or 1e3 for an integer column: 1, 1000
    auto [p, ec] = std::to_chars(num, num + sizeof num, i);
    scratch.assign(num, p);
    return std::string_view(scratch);
  }
  switch (v.type) {
    case expr::Value::Type::null: return std::nullopt;
    case expr::Value::Type::boolean: return std::string_view(json ? (v.b ? "true" : "false") : (v.b ? "t" : "f"));
    case expr::Value::Type::integer: {
      auto [p, ec] = std::to_chars(num, num + sizeof num, v.i);
      scratch.assign(num, p);
      return std::string_view(scratch);
    }
    case expr::Value::Type::number: {
      if (!std::isfinite(v.d)) return std::nullopt;
      if (!v.raw.empty()) return v.raw;  // as written: a numeric column keeps every digit
      auto [p, ec] = std::to_chars(num, num + sizeof num, v.d);
      scratch.assign(num, p);
      return std::string_view(scratch);
    }
    default:
      if (!json) return v.s;  // text; arrays and objects as JSON text
      scratch.clear();        // json/jsonb: the value as JSON ("plain" with its quotes)
      expr::append_value_json(v, scratch);
      return std::string_view(scratch);
  }
}

}  // namespace

void CopyEncoder::set_columns(const std::vector<TableColumn>& columns, const std::vector<TableColumn>& table_columns) {
  json_column_.clear();
  kinds_.clear();
  binary_ = !columns.empty();
  for (const auto& c : columns) {
    std::string type = c.type.empty() ? "text" : c.type;
    for (const auto& t : table_columns)
      if (t.name == c.name) type = t.type;
    kinds_.push_back(binary_kind(type));
    json_column_.push_back(kinds_.back() == BinaryKind::json || kinds_.back() == BinaryKind::jsonb);
    if (kinds_.back() == BinaryKind::other) binary_ = false;
  }
}

std::vector<std::string_view> CopyRows::pieces(size_t from, size_t to) const {
  std::vector<std::string_view> out;
  for (size_t i = from; i < to; ++i) {
    std::string_view r = row[i];
    if (!out.empty() && out.back().data() + out.back().size() == r.data())
      out.back() = std::string_view(out.back().data(), out.back().size() + r.size());
    else if (!r.empty())
      out.push_back(r);
  }
  return out;
}

void CopyEncoder::make_rows(const Batch& batch, CopyRows& rows, expr::Evaluator& eval) const {
  std::string error;
  rows.row.reserve(batch.size());
  rows.record.reserve(batch.size());
  rows.binary = binary_;
  // Where each row lies: in a record's slice (stable), or at an offset in
  // rows.data (which may still move as it grows: resolved at the end).
  struct Place {
    const char* at = nullptr;  // null: in rows.data at `offset`
    size_t offset = 0;
    size_t size = 0;
  };
  std::vector<Place> places;
  places.reserve(batch.size());
  bool as_text = false;
  for (size_t k = 0; k < batch.size() && !as_text; ++k) {
    const Record& r = batch[k];
    if (r.row.empty() && !eval.bind(r.data, error)) {
      rows.unreadable.emplace_back(k, error);
      continue;
    }
    if (!r.row.empty()) {  // made in the format binary_ says
      std::string_view v = r.row.view();
      if (rows.keep.empty() || rows.keep.back() != r.row.buffer) rows.keep.push_back(r.row.buffer);
      places.push_back({v.data(), 0, v.size()});
    } else {
      size_t at = rows.data.size();
      as_text = !append_row(eval, rows.data, binary_);
      places.push_back({nullptr, at, rows.data.size() - at});
    }
    rows.record.push_back(k);
  }
  if (!as_text) {
    for (const auto& p : places)
      rows.row.emplace_back(p.at ? p.at : rows.data.data() + p.offset, p.size);
    return;
  }
  // A value binary cannot carry as the text would be read (a string for an
  // integer column): the batch goes in text, and the server judges it.
  rows = CopyRows{};
  std::vector<size_t> start;
  for (size_t k = 0; k < batch.size(); ++k) {
    if (!eval.bind(batch[k].data, error)) {
      rows.unreadable.emplace_back(k, error);
      continue;
    }
    start.push_back(rows.data.size());
    rows.record.push_back(k);
    append_row(eval, rows.data, false);
  }
  start.push_back(rows.data.size());
  for (size_t i = 0; i + 1 < start.size(); ++i)
    rows.row.emplace_back(rows.data.data() + start[i], start[i + 1] - start[i]);
}

bool CopyEncoder::append_row(expr::Evaluator& eval, std::string& out, bool binary) const {
  std::string scratch;
  if (!binary) {
    for (size_t c = 0; c < kinds_.size(); ++c) {
      if (c) out += '\t';
      auto text = value_text(eval.eval(c), kinds_[c], json_column_[c], scratch);
      if (text) append_copy_text(out, *text);
      else out += "\\N";
    }
    out += '\n';
    return true;
  }
  size_t start = out.size();
  append_big_endian(out, static_cast<int16_t>(kinds_.size()));
  for (size_t c = 0; c < kinds_.size(); ++c) {
    expr::Value v = eval.eval(c);
    BinaryKind kind = kinds_[c];
    if (int64_t whole = 0; as_whole(v, kind, whole)) v = expr::Value::integer_value(whole);
    if (v.type == expr::Value::Type::null) {
      append_big_endian(out, int32_t{-1});
      continue;
    }
    bool fits = true;
    switch (kind) {
      case BinaryKind::int2:
        fits = v.type == expr::Value::Type::integer && v.i >= INT16_MIN && v.i <= INT16_MAX;
        if (fits) append_big_endian(out, int32_t{2}), append_big_endian(out, static_cast<int16_t>(v.i));
        break;
      case BinaryKind::int4:
        fits = v.type == expr::Value::Type::integer && v.i >= INT32_MIN && v.i <= INT32_MAX;
        if (fits) append_big_endian(out, int32_t{4}), append_big_endian(out, static_cast<int32_t>(v.i));
        break;
      case BinaryKind::int8:
        fits = v.type == expr::Value::Type::integer;
        if (fits) append_big_endian(out, int32_t{8}), append_big_endian(out, v.i);
        break;
      case BinaryKind::float8: {
        fits = v.is_numeric();
        double d = v.as_double();  // correctly rounded, as float8in reads the digits
        // 1e-400 reads as 0 here but is out of range for float8in: the text decides.
        std::string_view mantissa = v.raw.substr(0, v.raw.find_first_of("eE"));
        if (d == 0 && mantissa.find_first_of("123456789") != std::string_view::npos) fits = false;
        if (!fits) break;
        if (!std::isfinite(d)) {
          append_big_endian(out, int32_t{-1});
          break;
        }
        uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        append_big_endian(out, int32_t{8});
        append_big_endian(out, bits);
        break;
      }
      case BinaryKind::boolean:
        fits = v.type == expr::Value::Type::boolean;
        if (fits) append_big_endian(out, int32_t{1}), out += static_cast<char>(v.b ? 1 : 0);
        break;
      case BinaryKind::text:
      case BinaryKind::json:
      case BinaryKind::jsonb: {
        auto text = value_text(v, kind, json_column_[c], scratch);
        if (!text) {
          append_big_endian(out, int32_t{-1});
          break;
        }
        bool jsonb = kind == BinaryKind::jsonb;
        fits = text->size() < INT32_MAX - 1;
        if (!fits) break;
        append_big_endian(out, static_cast<int32_t>(text->size() + (jsonb ? 1 : 0)));
        if (jsonb) out += '\1';  // jsonb's binary format: a version byte, then the text
        out += *text;
        break;
      }
      case BinaryKind::other: fits = false; break;
    }
    if (!fits) {
      out.resize(start);
      return false;
    }
  }
  return true;
}

}  // namespace aetl
