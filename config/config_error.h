#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace aetl {

/// Where something stands in a pipeline file (1-based line and column).
struct ConfigLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

/// One problem in a pipeline file, printed as `file:line:col: message`.
struct ConfigProblem {
  ConfigLocation where;
  std::string message;
  std::string format() const;
};

/// All problems found in a pipeline file, reported together (validation does not
/// stop at the first). Messages never contain the values of expanded variables.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<ConfigProblem> problems);
  const std::vector<ConfigProblem>& problems() const { return problems_; }

 private:
  std::vector<ConfigProblem> problems_;
};

}  // namespace aetl
