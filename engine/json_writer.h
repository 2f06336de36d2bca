#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace aetl {

/// Appends JSON text to a string. Commas are placed automatically; the caller
/// is responsible for balanced begin/end calls and for calling key() inside objects.
/// Strings are escaped per RFC 8259; bytes that are not valid UTF-8 are written as
/// \udcXX (the "surrogateescape" convention), so they are kept, never dropped.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& string(std::string_view v);
  JsonWriter& number(int64_t v);
  JsonWriter& number(double v, int decimals);
  JsonWriter& boolean(bool v);
  JsonWriter& null();
  /// Inserts an already valid JSON fragment as one value.
  JsonWriter& raw(std::string_view json);

 private:
  void before_value();
  std::string& out_;
  uint64_t first_bits_ = 1;  // bit d set: the container at depth d has no element yet
  int depth_ = 0;
  bool after_key_ = false;
};

/// Appends `s` to `out` as a quoted, escaped JSON string.
void append_json_string(std::string& out, std::string_view s);

/// Copies JSON text to `out` with each byte inside a string that is not valid
/// UTF-8 written as \udcXX, as append_json_string writes it. Returns false, with
/// `out` unspecified, when no string held such a byte.
bool escape_invalid_utf8_in_strings(std::string_view json, std::string& out);

}  // namespace aetl
