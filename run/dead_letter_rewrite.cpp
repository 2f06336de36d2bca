#include "run/dead_letter_rewrite.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "engine/setup_error.h"

namespace aetl {

std::string dead_letter_rewrite_path(const std::string& path) { return path + ".replay-tmp"; }

void finish_dead_letter_rewrite(const std::string& path, uint64_t recorded_inode) {
  std::string tmp = dead_letter_rewrite_path(path);
  struct stat t {};
  if (::stat(tmp.c_str(), &t) != 0) return;
  struct stat p {};
  bool path_is_recorded = ::stat(path.c_str(), &p) == 0 && static_cast<uint64_t>(p.st_ino) == recorded_inode;
  if (path_is_recorded || static_cast<uint64_t>(t.st_ino) != recorded_inode) {
    ::unlink(tmp.c_str());
    return;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw SetupError(path + ": cannot put in place the rewrite a killed aetl replay left in " + tmp + ": " +
                     std::strerror(errno));
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  spdlog::info("{}: an aetl replay was killed after recording its rewrite of this file: put in place", path);
}

}  // namespace aetl
