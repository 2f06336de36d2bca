#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/record.h"
#include "net/sql_table.h"

namespace aetl {
namespace expr {
class Evaluator;
}

// COPY's binary format: a signature, flags and header extension length; each
// tuple is a field count and (length, bytes) per field; -1 ends the data.
inline constexpr std::string_view kCopyBinaryHeader("PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
inline constexpr std::string_view kCopyBinaryTrailer("\377\377", 2);

/// A batch turned into COPY rows ahead of its write (on the pool, while the
/// previous batch commits). Rows are in batch order; a row's bytes are
/// data[start[i], start[i + 1]), so any run of rows can be sent on its own.
struct CopyRows {
  bool binary = false;             // COPY's binary format (else text)
  std::vector<std::string_view> row;  // per row: its line (binary: its tuple), in `data` or in a
                                      // record's row slice (made by the row step: not copied)
  std::vector<size_t> record;      // per row: its record's index in the batch
  std::vector<std::pair<size_t, std::string>> unreadable;  // records that are not JSON objects
  std::string data;                // the rows make_rows encoded itself
  std::vector<std::shared_ptr<const std::string>> keep;  // the row slices' buffers, held

  /// Rows [from, to) as few pieces as their places allow (neighbours in one
  /// buffer join), for PgConnection::copy_in.
  std::vector<std::string_view> pieces(size_t from, size_t to) const;
};

/// How a column's values are sent in COPY's binary format (`text`: the text
/// bytes, as text/varchar/json take them); `other`: the table is written in text.
enum class BinaryKind : uint8_t { other, int2, int4, int8, float8, boolean, text, json, jsonb };

/// The postgres sink's encoding of records into COPY rows, in COPY's text format
/// or, when every column's type allows it, its binary format (the server then
/// parses less). Values travel only as COPY data, never inside SQL text. A value
/// goes in binary only as PostgreSQL would read its text (1.0 for an integer
/// column is 1; a string for one is not sent in binary): a batch with a value
/// that cannot goes in text, and the server judges it. The columns are set once
/// before rows are made; then any thread may make rows (each with its own
/// evaluator, whose expression i reads column i of the bound record).
class CopyEncoder {
 public:
  /// The columns rows are made for, in order; a column's type is the table's
  /// where `table_columns` has it (else the declared one, else text). json/jsonb
  /// columns take each value as JSON text.
  void set_columns(const std::vector<TableColumn>& columns, const std::vector<TableColumn>& table_columns);
  /// Every column has a binary kind: rows go in binary.
  bool binary() const { return binary_; }

  /// Pool thread: records into COPY rows (those the row step encoded already are
  /// copied as they are). Binary if the table takes it and every row could be
  /// encoded so; else the whole batch in text.
  void make_rows(const Batch& batch, CopyRows& rows, expr::Evaluator& eval) const;

  /// Any thread: the bound record's row, in COPY's text format (with its newline)
  /// or binary format. False (nothing appended) if a value cannot go in binary as
  /// its text would be read: an integer column given a string or a fraction, a
  /// boolean column given anything but a boolean, a value out of the column's range.
  bool append_row(expr::Evaluator& eval, std::string& out, bool binary) const;

 private:
  std::vector<char> json_column_;  // per column: json or jsonb
  std::vector<BinaryKind> kinds_;  // per column: how binary COPY sends it
  bool binary_ = false;            // every column has a binary kind: rows go in binary
};

}  // namespace aetl
