#include "sources/lines/input_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/setup_error.h"

namespace aetl {

std::vector<InputFile> open_inputs(const std::vector<std::string>& paths) {
  std::vector<std::string> names = paths.empty() ? std::vector<std::string>{"-"} : paths;
  std::vector<InputFile> inputs;
  bool stdin_used = false;
  try {
    for (const auto& name : names) {
      InputFile in;
      in.name = name;
      if (name == "-") {
        if (stdin_used) throw SetupError("-: standard input named more than once");
        stdin_used = true;
        in.fd = STDIN_FILENO;
      } else {
        in.fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
        if (in.fd < 0) throw SetupError(name + ": " + std::strerror(errno));
      }
      struct stat st {};
      if (::fstat(in.fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
          if (in.fd != STDIN_FILENO) ::close(in.fd);
          throw SetupError(name + ": is a directory");
        }
        in.regular = S_ISREG(st.st_mode);
        if (in.regular) in.size = st.st_size;
      }
      inputs.push_back(std::move(in));
    }
  } catch (...) {
    close_inputs(inputs);
    throw;
  }
  return inputs;
}

void close_inputs(std::vector<InputFile>& inputs) {
  for (auto& in : inputs) {
    if (in.fd > STDIN_FILENO) ::close(in.fd);
    in.fd = -1;
  }
}

}  // namespace aetl
