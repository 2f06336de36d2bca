#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_error.h"

namespace aetl {

/// A YAML document as a plain tree that remembers where each node stood, so every
/// later check can say `file:line:col`. Built from yaml-cpp's event parser; yaml-cpp
/// itself stays out of every other file.
struct ConfigValue {
  enum class Type { null, scalar, sequence, mapping };
  Type type = Type::null;
  std::string scalar;   ///< scalars: the text as written (after YAML unquoting)
  bool quoted = false;  ///< scalars written in quotes or as a block: always a string
  bool verbatim = false;  ///< scalars: the text stands unchanged on one line of the file
  int column_shift = 0;   ///< scalars: 1 when the text starts after a quote
  ConfigLocation where;
  std::vector<ConfigValue> items;                             ///< sequences
  std::vector<std::pair<ConfigValue, ConfigValue>> entries;   ///< mappings, in file order

  bool is_null() const { return type == Type::null; }
  bool is_scalar() const { return type == Type::scalar; }
  bool is_sequence() const { return type == Type::sequence; }
  bool is_mapping() const { return type == Type::mapping; }
  /// The value for `key` in a mapping, or nullptr.
  const ConfigValue* find(std::string_view key) const;
  /// "a mapping", "a list", "a string", "null": for type errors.
  std::string describe() const;
};

/// Limits that keep a hostile file from using unbounded memory or time.
struct ConfigLimits {
  size_t max_file_bytes = 1 << 20;  ///< a pipeline file is small
  size_t max_nodes = 100000;        ///< after expanding aliases ("billion laughs")
  size_t max_depth = 64;
};

/// Parses YAML text into a tree. Throws ConfigError with the location of a syntax
/// error, a duplicate key, a non-scalar key, more than one document, or a limit hit.
ConfigValue parse_config_text(std::string_view text, const std::string& file_name,
                              const ConfigLimits& limits = {});

/// Reads and parses a file. Throws ConfigError ("file:0:0: cannot read: ...") if unreadable.
ConfigValue load_config_file(const std::string& path, const ConfigLimits& limits = {});

}  // namespace aetl
