#include "sinks/jsonl/jsonl_sink.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "engine/setup_error.h"
#include "engine/blocking_pool.h"
#include "engine/shutdown.h"

namespace aetl {

JsonlSink::JsonlSink(StageContext& ctx, std::string path, bool append, bool durable)
    : ctx_(ctx), path_(std::move(path)), append_(append), durable_(durable) {}

JsonlSink::~JsonlSink() {
  if (fd_ > STDOUT_FILENO) ::close(fd_);
}

asio::awaitable<void> JsonlSink::open() {
  if (path_ == "-") {
    fd_ = STDOUT_FILENO;
    struct stat st {};
    regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    co_return;
  }
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append_ ? O_APPEND : O_TRUNC);
  std::string path = path_;
  auto job = [path, flags] {
    int fd = ::open(path.c_str(), flags, 0666);
    return fd >= 0 ? fd : -errno;  // errno belongs to the pool thread
  };
  int fd = co_await run_blocking(ctx_.pool.pool(), job);
  if (fd < 0) throw SetupError(path_ + ": " + std::strerror(-fd));
  fd_ = fd;
  struct stat st {};
  regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
}

asio::awaitable<bool> JsonlSink::write(const Batch& batch) {
  std::string buffer;
  size_t total = 0;
  for (const auto& r : batch) total += r.data.size() + 1;
  buffer.reserve(total);
  for (const auto& r : batch) {
    buffer += r.data;
    buffer += '\n';
  }
  int fd = fd_;
  bool sync = durable_ && fsync_supported_;
  bool regular = regular_;
  const RunControl* control = &ctx_.control;
  // 0 written, -1 closed pipe, -3 given up (aborted while the reader was stuck), else errno.
  // A pipe or terminal is written in PIPE_BUF pieces after poll(), so a write never
  // blocks for good: a reader that stops reading cannot hold up an abort.
  auto job = [fd, sync, regular, control, buffer = std::move(buffer)]() -> int {
    const char* p = buffer.data();
    size_t left = buffer.size();
    while (left > 0) {
      size_t piece = left;
      if (!regular) {
        pollfd pfd{fd, POLLOUT, 0};
        int r = ::poll(&pfd, 1, 200);
        if (r < 0 && errno != EINTR) return errno;
        if (r <= 0) {
          if (control->aborted()) return -3;
          continue;
        }
        piece = std::min<size_t>(left, PIPE_BUF);
      }
      ssize_t n = ::write(fd, p, piece);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return errno == EPIPE ? -1 : errno;
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    if (sync && ::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) return errno;
    return 0;
  };
  int rc = co_await run_blocking(ctx_.pool.pool(), job);
  if (rc == -3) co_return false;
  if (rc == -1) co_return false;
  if (rc != 0) throw std::runtime_error((path_ == "-" ? std::string("stdout") : path_) + ": " + std::strerror(rc));
  lines_ += batch.size();
  co_return true;
}

asio::awaitable<void> JsonlSink::close() {
  if (fd_ > STDOUT_FILENO) {
    int fd = fd_;
    fd_ = -1;
    auto job = [fd] { return ::close(fd) == 0 ? 0 : errno; };
    int rc = co_await run_blocking(ctx_.pool.pool(), job);
    if (rc != 0) throw std::runtime_error(path_ + ": " + std::strerror(rc));
  }
}

}  // namespace aetl
