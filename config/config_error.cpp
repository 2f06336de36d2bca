#include "config/config_error.h"

namespace aetl {
namespace {

std::string join(const std::vector<ConfigProblem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += '\n';
    out += p.format();
  }
  return out;
}

}  // namespace

std::string ConfigProblem::format() const {
  if (where.line == 0) return message;  // about the file as a whole: the message names it
  return where.file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " + message;
}

ConfigError::ConfigError(std::vector<ConfigProblem> problems)
    : std::runtime_error(join(problems)), problems_(std::move(problems)) {}

}  // namespace aetl
