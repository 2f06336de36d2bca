#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aetl {

/// A path into a JSON document as the http source's fields write it: keys
/// separated by dots, `[*]` after the last one allowed (`data.results[*]`, the
/// same as `data.results`); "" or "." is the whole document.
struct JsonPath {
  std::vector<std::string> keys;
  std::string text;  ///< as written, for messages
};

/// nullopt, with `error` set, for a path that is not of that form.
std::optional<JsonPath> parse_json_path(std::string_view text, std::string& error);

/// The value at `path` in the valid JSON `doc`, as written; nullopt when a key is
/// missing or a step is not an object.
std::optional<std::string_view> find_json_path(std::string_view doc, const JsonPath& path);

/// A scalar as text: a string decoded, a number or true/false as written; nullopt
/// for null, an empty string, an object or an array.
std::optional<std::string> json_scalar_text(std::string_view raw);

/// What one page of an API holds.
struct PageContent {
  /// The records, as written: each element of the array at the records path (an
  /// element that is not an object as {"value": element}), or the object there.
  std::vector<std::string> records;
  std::optional<std::string> next;  ///< the next field's value (json_scalar_text); nullopt: none
};

/// Reads a page's body. Returns empty on success, else the cause: "not JSON
/// (...)", "no `PATH` in the response", "`PATH` is not an array or an object".
/// null at the records path is a page without records.
std::string read_page(const std::string& body, const JsonPath& records, const JsonPath* next, PageContent& out);

}  // namespace aetl
