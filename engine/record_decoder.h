#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aetl {

namespace expr {
struct ParsedRecord;
}

enum class LineFormat { json, text, csv };

struct DecoderOptions {
  LineFormat format = LineFormat::json;
  bool validate = true;     ///< json: check each line is a well-formed JSON object
  char delimiter = ',';     ///< csv
  bool infer_types = true;  ///< csv: a field that is a JSON number becomes a number
};

/// What became of one input line.
struct Decoded {
  enum Kind { record, skip, error, more } kind = skip;
  std::string data;   ///< record: a JSON object; error: the message
};

/// Turns input lines into records: JSON Lines checked and passed through as
/// written (numbers beyond 64 bits or a double, and lone \udcXX escapes, are valid
/// JSON and kept as written; bytes of a string that are not UTF-8 become \udcXX);
/// text lines wrapped as {"line": ...}; CSV rows (RFC 4180: quoted fields, doubled
/// quotes, line breaks inside quotes kept as written, LF or CRLF) as objects keyed
/// by the header row. A quote that closes a field must be followed by the
/// delimiter or the end of the row; a quote inside an unquoted field is a plain
/// character. One decoder per input (CSV keeps the header). Thread-compatible.
class RecordDecoder {
 public:
  explicit RecordDecoder(DecoderOptions options);
  ~RecordDecoder();

  /// Decodes one line. CSV: `more` when the line ends inside a quoted field (the
  /// next line continues the record); the header row is `skip`.
  /// `padded`: at least 64 readable bytes follow the line (it is checked in place).
  Decoded decode(std::string_view line, bool padded = false);
  /// csv: decode() of input line `number` (1-based, for messages); `crlf`: the line
  /// ended with CRLF, which a quoted field going on to the next line keeps.
  Decoded decode_csv(std::string_view line, uint64_t number, bool crlf);
  /// CSV: the line that was read as the header (a resumed read feeds it first).
  bool has_header() const { return !header_.empty(); }
  void set_header_line(std::string_view line);
  /// json: a record comes back with empty `data` (or, if invalid UTF-8 was escaped,
  /// the record as rewritten); the record is this (the line without surrounding
  /// blanks, a view into the line given to decode()).
  std::string_view last_trimmed() const { return last_trimmed_; }
  /// json with validate: the parse of the record decode() just returned (valid
  /// until the next decode), so the first step need not parse it again; null
  /// when the record holds what simdjson's parse cannot (then the text is read).
  const expr::ParsedRecord* last_parsed() const;
  /// CSV input ended inside quotes.
  bool pending() const { return !carry_.empty(); }

 private:
  Decoded recheck(std::string_view line, int parse_error);

  DecoderOptions options_;
  struct Validator;
  std::unique_ptr<Validator> validator_;
  std::vector<std::string> header_;      // csv: keys, JSON-escaped with quotes
  std::string carry_;                    // csv: a record spanning lines, with its line breaks
  uint64_t line_number_ = 0;             // csv: the last line decoded
  uint64_t record_line_ = 0;             // csv: the first line of the record
  std::vector<std::string> fields_;
  std::string_view last_trimmed_;
  bool has_parsed_ = false;
};

/// How a CSV record split: whole, still inside quotes at the end (the record
/// continues on the next line), or with something other than the delimiter
/// after a closing quote.
enum class CsvSplit { whole, open_quote, after_quote };

/// Splits one CSV record into fields. On after_quote, `*bad_at` (if given) is the
/// offset of the offending byte in `text`.
CsvSplit split_csv(std::string_view text, char delimiter, std::vector<std::string>& fields, size_t* bad_at = nullptr);

/// True if `s` is a number exactly as JSON writes one (no leading zeros, no '+').
bool is_json_number(std::string_view s);

}  // namespace aetl
