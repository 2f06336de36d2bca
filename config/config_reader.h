#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_error.h"
#include "config/config_tree.h"
#include "config/env_expand.h"
#include "config/field_spec.h"
#include "engine/retry.h"

namespace aetl {

/// Collects the problems of one pipeline file; validation goes on after a problem
/// so that one `aetl validate` shows all of them. Each message starts with the part
/// of the pipeline it is about (`sink sqlite: `), set by a ProblemContext.
class ConfigProblems {
 public:
  explicit ConfigProblems(EnvLookup env) : env_(std::move(env)) {}
  /// Adds `context: message` (just `message` outside any context).
  void add(const ConfigLocation& where, std::string message);
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  const std::vector<ConfigProblem>& list() const { return list_; }
  /// Throws ConfigError with everything collected (sorted by position), if anything.
  void throw_if_any() const;
  const EnvLookup& env() const { return env_; }

  /// A part names another part of the pipeline (a route's sink, the dead letter),
  /// which may be read after it: load_pipeline checks each once all are read.
  struct Reference {
    std::string what;  ///< "sink", "dead_letter"
    std::string name;
    ConfigLocation where;
    std::string context;  ///< the part that refers, for the message
  };
  void refer(std::string what, std::string name, ConfigLocation where) {
    references_.push_back({std::move(what), std::move(name), std::move(where), context_});
  }
  const std::vector<Reference>& references() const { return references_; }
  /// Adds `message` as told by the part `context` ("" for none).
  void add_as(const std::string& context, const ConfigLocation& where, std::string message) {
    std::string saved = std::exchange(context_, context);
    add(where, std::move(message));
    context_ = std::move(saved);
  }

 private:
  friend class ProblemContext;
  EnvLookup env_;
  std::vector<Reference> references_;
  std::vector<ConfigProblem> list_;
  std::string context_;
};

/// Names the part of the pipeline that the problems added while it lives are about
/// ("sink sqlite", "stage 2 (fetch)"); the previous name comes back at its end.
class ProblemContext {
 public:
  ProblemContext(ConfigProblems& problems, std::string name);
  ~ProblemContext();
  ProblemContext(const ProblemContext&) = delete;
  ProblemContext& operator=(const ProblemContext&) = delete;
  void rename(std::string name) { problems_.context_ = std::move(name); }

 private:
  ConfigProblems& problems_;
  std::string saved_;
};

/// A scalar after `${VAR}` expansion, with where it stood. `secret` is set when
/// the text holds expanded values: it must not be printed.
struct ConfigString {
  std::string text;
  ConfigLocation where;
  bool secret = false;
  /// The variables expanded into `text`, with their values (config/env_expand.h).
  std::vector<std::pair<std::string, std::string>> values;
  /// Where byte `offset` of `text` stands in the file (for expression errors);
  /// the scalar's start when the text is not a verbatim copy of the file.
  ConfigLocation at(size_t offset) const;
  bool verbatim = false;  ///< offsets map one to one onto the file's line
  int column_shift = 0;
};

/// Reads the keys of one mapping with their types, reporting every problem with its
/// location and the key's whole dotted path (`batch.size: must be a whole number`).
/// Every key read must be declared in `declared` with the type it is read as: reading
/// anything else throws std::logic_error (a parser that drifted from its declaration;
/// the kinds' unit test runs every parser on its declared examples). finish() reports
/// the keys nobody declared, with a "did you mean" among the declared names.
class ConfigReader {
 public:
  /// `path`: where `node` stands in the kind ("" for the kind itself, "batch" for a
  /// nested mapping); keys are declared as `path.key`.
  ConfigReader(const ConfigValue& node, ConfigProblems& problems, std::vector<FieldList> declared,
               std::string path = "");
  /// For a kind written in short form (`filter: 'expr'`): no mapping to read.
  bool ok() const { return node_ != nullptr; }
  const ConfigLocation& where() const;

  /// The raw value, marking the key as read. nullptr if absent (or null). Any
  /// declared key, or a declared section (`batch` when `batch.size` is declared).
  const ConfigValue* raw(std::string_view key, bool required = false);
  /// A reader for the nested mapping `key` (a declared section); nullopt when absent
  /// or not a mapping (reported).
  std::optional<ConfigReader> section(std::string_view key);
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
  /// `retry: {max: N, backoff: 100ms..30s}` (or `retry: N`); declared as `key.max`, `key.backoff`.
  std::optional<RetryPolicy> retry(std::string_view key, const RetryPolicy& defaults);

  /// Reports keys that are not declared. Throws std::logic_error for a declared key
  /// that is present but was never read (its value would be ignored silently).
  void finish();

  ConfigProblems& problems() { return problems_; }
  /// `key` with this reader's path in front: "batch.size".
  std::string full(std::string_view key) const;

 private:
  /// The declaration of `key`; throws std::logic_error when it is undeclared or
  /// declared with a type not in `types` (none given: any type, or a section).
  const FieldSpec* declaration(std::string_view key, std::initializer_list<FieldType> types, bool required);
  const ConfigValue* lookup(std::string_view key, bool required);
  std::optional<ConfigString> text(std::string_view key, bool required);

  const ConfigValue* node_;
  ConfigProblems& problems_;
  std::vector<FieldList> declared_;
  std::string path_;
  std::vector<std::string> read_;
};

/// Expands `${VAR}` in one scalar, reporting problems as `what: ...` (just `...` when
/// `what` is empty: the kind's own value). nullopt on error.
std::optional<ConfigString> expand_scalar(const ConfigValue& value, ConfigProblems& problems,
                                          std::string_view what);

}  // namespace aetl
