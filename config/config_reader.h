#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.h"
#include "config/config_tree.h"
#include "config/env_expand.h"
#include "engine/retry.h"

namespace aetl {

/// Collects the problems of one pipeline file; validation goes on after a problem
/// so that one `aetl validate` shows all of them.
class ConfigProblems {
 public:
  explicit ConfigProblems(EnvLookup env) : env_(std::move(env)) {}
  void add(const ConfigLocation& where, std::string message) { list_.push_back({where, std::move(message)}); }
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  const std::vector<ConfigProblem>& list() const { return list_; }
  /// Throws ConfigError with everything collected (sorted by position), if anything.
  void throw_if_any() const;
  const EnvLookup& env() const { return env_; }

 private:
  EnvLookup env_;
  std::vector<ConfigProblem> list_;
};

/// A scalar after `${VAR}` expansion, with where it stood. `secret` is set when
/// the text holds expanded values: it must not be printed.
struct ConfigString {
  std::string text;
  ConfigLocation where;
  bool secret = false;
  /// Where byte `offset` of `text` stands in the file (for expression errors);
  /// the scalar's start when the text is not a verbatim copy of the file.
  ConfigLocation at(size_t offset) const;
  bool verbatim = false;  ///< offsets map one to one onto the file's line
  int column_shift = 0;
};

/// Reads the keys of one mapping with their types, reporting every problem with its
/// location; at finish() any key nobody asked for is reported with a "did you mean".
/// `what` names the mapping in messages ("sink 'sqlite'").
class ConfigReader {
 public:
  ConfigReader(const ConfigValue& node, ConfigProblems& problems, std::string what);
  /// For a kind written in short form (`filter: 'expr'`): no mapping to read.
  bool ok() const { return node_ != nullptr; }
  const ConfigLocation& where() const;

  /// The raw value, marking the key as known. nullptr if absent (or null).
  const ConfigValue* raw(std::string_view key, bool required = false);
  std::optional<ConfigString> string(std::string_view key, bool required = false);
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max, bool required = false);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::chrono::milliseconds> duration(std::string_view key);
  std::optional<int64_t> size(std::string_view key);
  std::optional<double> rate(std::string_view key);
  std::optional<std::string> choice(std::string_view key, const std::vector<std::string>& allowed);
  /// A string or a list of strings.
  std::optional<std::vector<ConfigString>> string_list(std::string_view key, bool required = false);
  /// A mapping of string → string, in file order.
  std::optional<std::vector<std::pair<std::string, ConfigString>>> string_map(std::string_view key);
  /// `retry: {max: N, backoff: 100ms..30s}`
  std::optional<RetryPolicy> retry(std::string_view key, const RetryPolicy& defaults);

  /// Reports keys that were never asked for.
  void finish();

  ConfigProblems& problems() { return problems_; }
  const std::string& what() const { return what_; }

 private:
  const ConfigValue* node_;
  ConfigProblems& problems_;
  std::string what_;
  std::vector<std::string> known_;
};

/// Expands `${VAR}` in one scalar, reporting problems. nullopt on error.
std::optional<ConfigString> expand_scalar(const ConfigValue& value, ConfigProblems& problems,
                                          std::string_view what);

}  // namespace aetl
