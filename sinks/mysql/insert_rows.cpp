#include "sinks/mysql/insert_rows.h"

#include <cctype>
#include <charconv>
#include <cmath>

#include "expr/expression.h"
#include "net/mysql/mysql_connection.h"

namespace aetl {
namespace {

bool is_json_type(std::string type) {
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type == "json";
}

void append_value(std::string& out, const expr::Value& v, bool json, std::string& scratch) {
  char num[32];
  switch (v.type) {
    case expr::Value::Type::null:
      out += "NULL";
      return;
    case expr::Value::Type::boolean:
      if (json) out += v.b ? "'true'" : "'false'";
      else out += v.b ? "TRUE" : "FALSE";
      return;
    case expr::Value::Type::integer: {
      auto [p, ec] = std::to_chars(num, num + sizeof num, v.i);
      out.append(num, p);
      return;
    }
    case expr::Value::Type::number: {
      if (!std::isfinite(v.d)) {
        out += "NULL";
        return;
      }
      if (!v.raw.empty()) {  // as written: a DECIMAL column keeps every digit
        out += v.raw;
        return;
      }
      auto [p, ec] = std::to_chars(num, num + sizeof num, v.d);
      out.append(num, p);
      return;
    }
    case expr::Value::Type::string:
      if (!json) {
        mysql::append_quoted(out, v.s);
        return;
      }
      [[fallthrough]];
    default:  // arrays and objects: their JSON text; any value for a json column
      scratch.clear();
      expr::append_value_json(v, scratch);
      mysql::append_quoted(out, scratch);
  }
}

/// A LOAD DATA field: its bytes with the format's special characters escaped.
void append_load_text(std::string& out, std::string_view v) {
  size_t plain = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const char* e = nullptr;
    switch (v[i]) {
      case '\\': e = "\\\\"; break;
      case '\t': e = "\\t"; break;
      case '\n': e = "\\n"; break;
      case '\r': e = "\\r"; break;
      case '\0': e = "\\0"; break;
      default: continue;
    }
    out.append(v.data() + plain, i - plain);
    out += e;
    plain = i + 1;
  }
  out.append(v.data() + plain, v.size() - plain);
}

void append_load_value(std::string& out, const expr::Value& v, bool json, std::string& scratch) {
  char num[32];
  switch (v.type) {
    case expr::Value::Type::null:
      out += "\\N";
      return;
    case expr::Value::Type::boolean:
      if (json) out += v.b ? "true" : "false";
      else out += v.b ? '1' : '0';
      return;
    case expr::Value::Type::integer: {
      auto [p, ec] = std::to_chars(num, num + sizeof num, v.i);
      out.append(num, p);
      return;
    }
    case expr::Value::Type::number: {
      if (!std::isfinite(v.d)) {
        out += "\\N";
        return;
      }
      if (!v.raw.empty()) {
        out += v.raw;
        return;
      }
      auto [p, ec] = std::to_chars(num, num + sizeof num, v.d);
      out.append(num, p);
      return;
    }
    case expr::Value::Type::string:
      if (!json) {
        append_load_text(out, v.s);
        return;
      }
      [[fallthrough]];
    default:
      scratch.clear();
      expr::append_value_json(v, scratch);
      append_load_text(out, scratch);
  }
}

}  // namespace

std::vector<std::string_view> InsertRows::pieces() const {
  std::vector<std::string_view> out;
  for (std::string_view r : row) {
    if (!out.empty() && out.back().data() + out.back().size() == r.data())
      out.back() = std::string_view(out.back().data(), out.back().size() + r.size());
    else if (!r.empty())
      out.push_back(r);
  }
  return out;
}

std::shared_ptr<InsertRows> without(std::shared_ptr<const InsertRows> rows, const std::vector<bool>& skip) {
  auto out = std::make_shared<InsertRows>();
  out->load = rows->load;
  for (size_t i = 0; i < rows->row.size(); ++i) {
    if (skip[rows->record[i]]) continue;
    out->row.push_back(rows->row[i]);
    out->record.push_back(rows->record[i]);
  }
  for (const auto& u : rows->unreadable)
    if (!skip[u.first]) out->unreadable.push_back(u);
  out->base = std::move(rows);
  return out;
}

void InsertEncoder::set_columns(const std::vector<TableColumn>& columns, const std::vector<TableColumn>& table_columns) {
  json_column_.clear();
  for (const auto& c : columns) {
    std::string type = c.type;
    for (const auto& t : table_columns)
      if (t.name == c.name && !t.type.empty()) type = t.type;
    json_column_.push_back(is_json_type(type));
  }
}

void InsertEncoder::append_line(expr::Evaluator& eval, std::string& out) const {
  std::string scratch;
  for (size_t i = 0; i < json_column_.size(); ++i) {
    if (i) out += '\t';
    append_load_value(out, eval.eval(i), json_column_[i], scratch);
  }
  out += '\n';
}

void InsertEncoder::make_rows(const Batch& batch, InsertRows& rows, expr::Evaluator& eval, bool load) const {
  rows.load = load;
  std::string error, scratch;
  // Where each row lies: in a record's slice (stable), or at an offset in
  // rows.data (which may still move as it grows: resolved at the end).
  struct Place {
    const char* at = nullptr;  // null: in rows.data at `offset`
    size_t offset = 0;
    size_t size = 0;
  };
  std::vector<Place> places;
  places.reserve(batch.size());
  rows.record.reserve(batch.size());
  for (size_t k = 0; k < batch.size(); ++k) {
    const Record& r = batch[k];
    if (load && !r.row.empty()) {  // the row step made its line
      std::string_view v = r.row.view();
      if (rows.keep.empty() || rows.keep.back() != r.row.buffer) rows.keep.push_back(r.row.buffer);
      places.push_back({v.data(), 0, v.size()});
      rows.record.push_back(k);
      continue;
    }
    if (!eval.bind(r.data, error)) {
      rows.unreadable.emplace_back(k, error);
      continue;
    }
    size_t at = rows.data.size();
    if (load) {
      append_line(eval, rows.data);
    } else {
      rows.data += '(';
      for (size_t i = 0; i < json_column_.size(); ++i) {
        if (i) rows.data += ',';
        append_value(rows.data, eval.eval(i), json_column_[i], scratch);
      }
      rows.data += ')';
    }
    places.push_back({nullptr, at, rows.data.size() - at});
    rows.record.push_back(k);
  }
  rows.row.reserve(places.size());
  for (const auto& p : places) rows.row.emplace_back(p.at ? p.at : rows.data.data() + p.offset, p.size);
}

}  // namespace aetl
