#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aetl {

/// The values of the `${VAR}`s expanded into an http source's URL and headers,
/// kept out of what it prints and stores: each value (as written or
/// %-encoded) stands as `${NAME}` there instead.
class SecretValues {
 public:
  /// Adds the variables one scalar expanded (empty values are ignored).
  void add(const std::vector<std::pair<std::string, std::string>>& values);
  bool empty() const { return values_.empty(); }

  /// `text` for a message: every value replaced by `${NAME}`.
  std::string hide(std::string_view text) const;
  /// `text` for the state file: as hide(), with every other `$` doubled, so
  /// that reveal() gives it back with the values current then.
  std::string to_template(std::string_view text) const;
  /// A to_template() text expanded from the environment; nullopt when a
  /// variable is not set.
  static std::optional<std::string> reveal(std::string_view stored);

 private:
  std::string replace(std::string_view text, bool escape) const;
  std::vector<std::pair<std::string, std::string>> values_;  // (value as found, name), longest first
};

}  // namespace aetl
