#pragma once
#include <string>
#include <vector>

namespace aetl {

/// An opened input: a named file or standard input ("-").
struct InputFile {
  std::string name;   ///< as given by the user ("-" for stdin), used in messages
  int fd = -1;
  bool regular = false;  ///< a regular file: its size is known and it can be pre-scanned
  long long size = -1;   ///< bytes, for regular files
};

/// Opens every input before anything runs, so a missing file fails the run up front.
/// Throws SetupError("NAME: No such file or directory") for the first that cannot be opened.
/// No paths means standard input. "-" may appear at most once.
std::vector<InputFile> open_inputs(const std::vector<std::string>& paths);

/// Closes the descriptors (not stdin's).
void close_inputs(std::vector<InputFile>& inputs);

}  // namespace aetl
