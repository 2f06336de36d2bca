#include "run/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "engine/setup_error.h"

namespace aetl {

RunLock::RunLock(const std::string& state_path) : path_(state_path + ".lock") {
  std::error_code ec;
  auto dir = std::filesystem::path(path_).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw SetupError(path_ + ": cannot open the lock file: " + std::strerror(errno));
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

bool RunLock::try_lock() {
  for (;;) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
      write_pid();
      return true;
    }
    if (errno == EWOULDBLOCK) return false;
    if (errno != EINTR) throw SetupError(path_ + ": cannot lock: " + std::strerror(errno));
  }
}

void RunLock::lock_blocking() {
  while (::flock(fd_, LOCK_EX) != 0)
    if (errno != EINTR) throw SetupError(path_ + ": cannot lock: " + std::strerror(errno));
  write_pid();
}

long RunLock::holder_pid() const {
  // The holder writes its pid right after taking the lock; give it a moment.
  for (int attempt = 0; attempt < 20; ++attempt) {
    char buf[32] = {};
    ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    if (n > 0) {
      char* end = nullptr;
      long pid = std::strtol(buf, &end, 10);
      if (pid > 0 && end && *end == '\n') return pid;
    }
    ::usleep(10'000);
  }
  return 0;
}

void RunLock::fail_busy(const std::string& message) { throw SetupError(message, SetupError::Kind::busy); }

void RunLock::write_pid() {
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    ssize_t n = ::pwrite(fd_, pid.data(), pid.size(), 0);
    (void)n;  // the pid is only for messages; the lock itself is what counts
  }
}

std::unique_ptr<RunLock> RunLock::for_pipeline(const std::string& state_path, const std::string& name, bool wait,
                                               const std::string& running) {
  auto who = [](long pid, const char* unknown) { return pid ? "pid " + std::to_string(pid) : std::string(unknown); };
  auto busy = [&](long pid) {
    return fmt::format("pipeline '{}' is {} ({} holds {}); --wait waits for it", name, running,
                       who(pid, "another process"), state_path + ".lock");
  };
  auto waiting = [&](long pid) { spdlog::info("waiting for {} to finish pipeline '{}'", who(pid, "another run"), name); };
  return std::unique_ptr<RunLock>(new RunLock(state_path, wait, busy, waiting));
}

}  // namespace aetl
