#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aetl {

/// Looks a variable up (the environment, or a map in tests).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment.
EnvLookup process_environment();

/// The result of expanding one YAML scalar.
struct Expanded {
  std::string text;
  bool used_variables = false;  ///< the text holds expanded values: never print it
  /// Each variable expanded from the environment, with its value (defaults aside).
  std::vector<std::pair<std::string, std::string>> values;
};

/// Expands `${VAR}` and `${VAR:-default}` (default used when VAR is unset or
/// empty, as in the shell); `$$` is a literal `$`; any other `$` is kept as is.
/// Names are [A-Za-z_][A-Za-z0-9_]*. Throws std::invalid_argument with a message
/// naming the variable (never its value) and the 0-based byte offset in `text`
/// via `error_offset` for an unset variable without default, an unterminated
/// `${`, or a bad name.
Expanded expand_env(std::string_view text, const EnvLookup& lookup, size_t* error_offset = nullptr);

}  // namespace aetl
