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
/// written; text lines wrapped as {"line": ...}; CSV rows (RFC 4180: quoted fields,
/// doubled quotes, line breaks inside quotes) as objects keyed by the header row.
/// One decoder per input (CSV keeps the header). Thread-compatible.
class RecordDecoder {
 public:
  explicit RecordDecoder(DecoderOptions options);
  ~RecordDecoder();

  /// Decodes one line. CSV: `more` when the line ends inside a quoted field (the
  /// next line continues the record); the header row is `skip`.
  /// `padded`: at least 64 readable bytes follow the line (it is checked in place).
  Decoded decode(std::string_view line, bool padded = false);
  /// CSV: the line that was read as the header (a resumed read feeds it first).
  bool has_header() const { return !header_.empty(); }
  void set_header_line(std::string_view line);
  /// json: a record comes back with empty `data`; the record is this (the line
  /// without surrounding blanks, a view into the line given to decode()).
  std::string_view last_trimmed() const { return last_trimmed_; }
  /// json with validate: the parse of the record decode() just returned (valid
  /// until the next decode), so the first step need not parse it again.
  const expr::ParsedRecord* last_parsed() const;
  /// CSV input ended inside quotes.
  bool pending() const { return !carry_.empty(); }

 private:
  Decoded decode_csv(std::string_view line);

  DecoderOptions options_;
  struct Validator;
  std::unique_ptr<Validator> validator_;
  std::vector<std::string> header_;      // csv: keys, JSON-escaped with quotes
  std::string carry_;                    // csv: a record spanning lines
  std::vector<std::string> fields_;
  std::string_view last_trimmed_;
  bool has_parsed_ = false;
};

/// Splits one CSV record into fields. Returns false if a quote is still open at
/// the end (the record continues on the next line).
bool split_csv(std::string_view text, char delimiter, std::vector<std::string>& fields);

/// True if `s` is a number exactly as JSON writes one (no leading zeros, no '+').
bool is_json_number(std::string_view s);

}  // namespace aetl
