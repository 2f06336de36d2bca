#pragma once
#include <optional>
#include <string>

#include "config/config_reader.h"
#include "expr/expression.h"

namespace aetl {

/// Compiles one expression from the pipeline file into `program`; a syntax error
/// is reported at its column in the file, as `what: ...` (just `...` for an empty
/// `what`). Returns the expression's index.
inline std::optional<size_t> compile_expression(expr::Program& program, const ConfigString& text,
                                                ConfigProblems& problems, const std::string& what) {
  try {
    return program.add(text.text);
  } catch (const expr::ParseError& e) {
    problems.add(text.at(e.offset), (what.empty() ? "" : what + ": ") + e.what());
    return std::nullopt;
  }
}

}  // namespace aetl
