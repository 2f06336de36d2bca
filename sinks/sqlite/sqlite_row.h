#pragma once
#include <cstddef>
#include <string>
#include <string_view>

struct sqlite3_stmt;

namespace aetl {
namespace expr {
class Evaluator;
}

/// The sqlite sink's encoding of one row: per column a tag byte, then 8 bytes of an
/// integer or a double, or a 4-byte length and the text (strings; arrays and
/// objects as JSON), or nothing (null). Made off the writer thread (on the
/// record-step lanes, or on the pool while the previous batch commits), so the
/// writer only binds and steps.

/// Appends the values of expressions 0..columns-1 of `eval` (bound to a record)
/// to `out`. A text over 2 GiB cannot be bound: false, `out` left as it was.
bool append_sqlite_row(expr::Evaluator& eval, size_t columns, std::string& out);

/// Binds a row made by append_sqlite_row to parameters 1..columns of `st`. Texts
/// are bound in place (SQLITE_STATIC): `row` must outlive the statement's step.
void bind_sqlite_row(sqlite3_stmt* st, std::string_view row, size_t columns);

}  // namespace aetl
