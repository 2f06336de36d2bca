#pragma once
#include <stdexcept>
#include <string>

#include "cli/exit_codes.h"

namespace aetl {

/// A setup or input error that ends the command before (or instead of) running it.
/// Thrown anywhere during setup, caught once in main, printed as one line on stderr.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message, ExitCode code = ExitCode::usage)
      : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

}  // namespace aetl
