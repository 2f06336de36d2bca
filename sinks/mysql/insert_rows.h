#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/record.h"
#include "net/sql_table.h"

namespace aetl {
namespace expr {
class Evaluator;
}

/// A batch turned into the value lists of multi-row INSERT statements, "(1,'a',NULL)"
/// per record, or into the lines of LOAD DATA's default format ("1\ta\t\\N\n"),
/// ahead of its write (on the pool, while the previous batch commits).
struct InsertRows {
  bool load = false;                  // LOAD DATA lines (else INSERT value lists)
  std::vector<std::string_view> row;  // per row: its value list or line, in `data`
  std::vector<size_t> record;         // per row: its record's index in the batch
  std::vector<std::pair<size_t, std::string>> unreadable;  // records that are not JSON objects
  std::string data;
  std::shared_ptr<const InsertRows> base;  // where the views lie, when not in `data` (without())
  std::vector<std::shared_ptr<const std::string>> keep;  // the row step's buffers the views lie in

  /// The rows as few pieces as their places allow (neighbours in one buffer join).
  std::vector<std::string_view> pieces() const;
};

/// The rows of `rows` whose record `skip` does not mark, as views into it.
std::shared_ptr<InsertRows> without(std::shared_ptr<const InsertRows> rows, const std::vector<bool>& skip);

/// The mysql sink's encoding of records into SQL value lists (text protocol:
/// there is no COPY). Strings are quoted as mysql::append_quoted does (the
/// session has no NO_BACKSLASH_ESCAPES); numbers go as written in the record
/// (every digit kept, for DECIMAL columns), booleans as TRUE/FALSE, arrays and
/// objects as their JSON text, null and non-finite numbers as NULL; a json
/// column takes every value as JSON text. Set the columns once; then any thread
/// may make rows (each with its own evaluator, whose expression i reads column i).
class InsertEncoder {
 public:
  void set_columns(const std::vector<TableColumn>& columns, const std::vector<TableColumn>& table_columns);
  /// `load`: the lines of LOAD DATA's default format instead (fields split by
  /// tabs; \\, tab, newline, carriage return and NUL escaped with a backslash;
  /// \\N for NULL; booleans as 1 and 0), the same values otherwise.
  /// Records the row step encoded already (Record::row, LOAD DATA lines) are
  /// taken as they are when `load`.
  void make_rows(const Batch& batch, InsertRows& rows, expr::Evaluator& eval, bool load = false) const;
  /// Any thread: the bound record's LOAD DATA line (with its newline).
  void append_line(expr::Evaluator& eval, std::string& out) const;

 private:
  std::vector<char> json_column_;
};

}  // namespace aetl
