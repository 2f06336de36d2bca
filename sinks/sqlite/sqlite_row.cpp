#include "sinks/sqlite/sqlite_row.h"

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "expr/expression.h"

namespace aetl {
namespace {

enum Tag : char { kNull = 0, kInteger = 1, kReal = 2, kText = 3 };

template <class T>
void put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

template <class T>
T get(const char*& p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  p += sizeof(T);
  return v;
}

}  // namespace

bool append_sqlite_row(expr::Evaluator& eval, size_t columns, std::string& out) {
  size_t start = out.size();
  for (size_t c = 0; c < columns; ++c) {
    expr::Value v = eval.eval(c);
    switch (v.type) {
      case expr::Value::Type::null: out += kNull; break;
      case expr::Value::Type::boolean:
        out += kInteger;
        put<int64_t>(out, v.b ? 1 : 0);
        break;
      case expr::Value::Type::integer:
        out += kInteger;
        put<int64_t>(out, v.i);
        break;
      case expr::Value::Type::number:
        out += kReal;
        put<double>(out, v.d);
        break;
      default:  // strings; arrays and objects as their JSON
        if (v.s.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
          out.resize(start);
          return false;
        }
        out += kText;
        put<uint32_t>(out, static_cast<uint32_t>(v.s.size()));
        out.append(v.s);
    }
  }
  return true;
}

void bind_sqlite_row(sqlite3_stmt* st, std::string_view row, size_t columns) {
  const char* p = row.data();
  for (size_t c = 0; c < columns; ++c) {
    int col = static_cast<int>(c + 1);
    switch (*p++) {
      case kNull: sqlite3_bind_null(st, col); break;
      case kInteger: sqlite3_bind_int64(st, col, get<int64_t>(p)); break;
      case kReal: sqlite3_bind_double(st, col, get<double>(p)); break;
      default: {
        auto n = get<uint32_t>(p);
        sqlite3_bind_text(st, col, p, static_cast<int>(n), SQLITE_STATIC);
        p += n;
      }
    }
  }
}

}  // namespace aetl
