#pragma once
#include <stdexcept>
#include <string>

namespace aetl {

/// A setup or input error that ends a command before (or instead of) its run: a
/// bad flag or pipeline file, an unreadable input, an output that cannot be
/// opened. Thrown anywhere during setup, caught once in cli/main.cpp, which prints
/// it as one line and maps its kind to an exit code (2, or 75 for `busy`).
class SetupError : public std::runtime_error {
 public:
  enum class Kind {
    bad_input,  ///< the command or its input must change (exit 2)
    busy,       ///< another run holds the state, or took over the sink: try later (exit 75)
  };
  explicit SetupError(const std::string& message, Kind kind = Kind::bad_input)
      : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

}  // namespace aetl
