#pragma once
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "expr/value.h"

namespace aetl::expr {

/// A syntax error; `offset` is the 0-based byte offset in the expression's text.
class ParseError : public std::runtime_error {
 public:
  ParseError(std::string message, size_t offset) : std::runtime_error(std::move(message)), offset(offset) {}
  size_t offset;
};

/// A field path: `user.country`, `tags[0]`, `$["odd key"]`.
struct Path {
  struct Segment {
    std::string key;
    long index = -1;  ///< >= 0: an array index instead of a key
  };
  std::vector<Segment> segments;
  std::string text() const;  ///< dotted form, for messages and column names
};

/// The expression reading top-level field `name` whatever it holds ($["name"]).
std::string field_expression(std::string_view name);

/// Parses a field path as written on the left of `set:` (`a.b`, `a["x y"]`).
Path parse_path(std::string_view text);

struct ProgramImpl;

/// A set of expressions compiled together so one pass over a record extracts
/// every field any of them names (simdjson On-Demand, only the named fields are
/// decoded). Compile once, then evaluate with an Evaluator per thread.
///
/// The language: field paths (`a.b[0]`, `$` the whole record, `$["odd key"]`),
/// literals (numbers, 'strings' or "strings", true, false, null, [lists]),
/// `== != < <= > >=`, `and or not` (also `&& || !`), `in` / `not in`,
/// `=~ !~` (RE2, pattern must be a literal), `+ - * / %`, and functions.
class Program {
 public:
  Program();
  ~Program();
  Program(Program&&) noexcept;
  Program& operator=(Program&&) noexcept;

  /// Compiles one expression; returns its index. Throws ParseError.
  size_t add(std::string_view source);
  /// The expression is a bare field path (its value can be copied as written).
  bool is_path(size_t index) const;
  size_t size() const;

  const ProgramImpl& impl() const { return *impl_; }

 private:
  std::unique_ptr<ProgramImpl> impl_;
};

/// Names of the functions, for documentation and error messages.
const std::vector<std::string>& function_names();

struct EvaluatorImpl;
struct ParsedRecord;

/// A record a step has just built from values it evaluated (select): the next
/// step can read those values instead of parsing the text it wrote. The values
/// live as long as the producing step's evaluator keeps them (until its next record).
struct ProjectedRecord {
  const std::vector<std::string>* names = nullptr;  ///< the record's fields, in order (unescaped, distinct)
  const Value* values = nullptr;                    ///< one per name; none `missing`
};

/// Evaluates a Program's expressions against one record at a time. Not thread-safe:
/// one per thread. Values returned stay valid until the next bind().
class Evaluator {
 public:
  /// `exact_numbers`: numbers are written (write_json) as in the record, so a
  /// decoder's parse is only read while it holds integers that print the same.
  explicit Evaluator(const Program& program, bool exact_numbers = false);
  ~Evaluator();

  /// Binds a record (one JSON object). Returns false with `error` set if the text
  /// is not a JSON object or is malformed where the expressions read it.
  bool bind(std::string_view json, std::string& error);
  /// The same, reading the string in place when its capacity leaves simdjson's
  /// padding (kRecordPadding) after the text; else it is copied.
  bool bind(const std::string& json, std::string& error);
  bool bind(const char* json, std::string& error) { return bind(std::string_view(json), error); }
  /// The same; `padded`: kRecordPadding readable bytes follow `json` (read in place).
  bool bind(std::string_view json, bool padded, std::string& error);
  /// The same for a record the decoder has parsed already (and checked): the
  /// fields are read from that parse, with the same results as from the text.
  bool bind(const ParsedRecord& parsed, std::string_view json, bool padded, std::string& error);
  /// The same for a record a step built (`json` is its text): the fields are read
  /// from the step's values, with the same results as from the text.
  bool bind(const ProjectedRecord& projected, std::string_view json, bool padded, std::string& error);

  Value eval(size_t index);
  bool test(size_t index) { return eval(index).truthy(); }
  /// Appends expression `index`'s value as JSON: a bare path's value as written in
  /// the record (a string with escapes is re-escaped one way: see append_value_json);
  /// computed values serialised (non-finite numbers → null).
  void write_json(size_t index, std::string& out);

 private:
  std::unique_ptr<EvaluatorImpl> impl_;
};

/// Spare capacity that lets records be parsed in place (simdjson reads up to this
/// many bytes past the end; their content does not matter).
inline constexpr size_t kRecordPadding = 64;

/// Appends a value as JSON: the raw text when it came from the record, except for a
/// string written with escapes, which is written as append_json_string escapes it
/// (so a string reads the same whether it came from the text or from a parse).
void append_value_json(const Value& v, std::string& out);

}  // namespace aetl::expr
