#include "sinks/file/file_output.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <spdlog/spdlog.h>

#include "engine/setup_error.h"
#include "engine/blocking_pool.h"
#include "run/checkpoint.h"
#include "run/pipeline_sink.h"
#include "engine/shutdown.h"

namespace aetl {

std::optional<uint64_t> checkpointed_length(const Checkpoint* resume, const std::string& key) {
  if (!resume) return std::nullopt;
  auto it = resume->sink_lengths.find(key);
  if (it == resume->sink_lengths.end()) return std::nullopt;
  return it->second;
}

FileOutput::FileOutput(StageContext& ctx, std::string path, bool append, bool fsync, FileOutputRules rules)
    : ctx_(ctx), path_(std::move(path)), append_(append), fsync_(fsync), rules_(std::move(rules)) {}

namespace {

/// Held while a batch goes to a stream: two sinks writing to stdout (a --dry-run
/// of several sinks) each write whole batches, not pieces of them in turn.
std::mutex& stream_write_mutex() {
  static std::mutex m;
  return m;
}

/// The length of `fd`'s first `size` bytes up to and including the last line
/// break: an appended file keeps whole lines only (a run killed in the middle of
/// a write leaves a torn line, whose record was never acknowledged).
uint64_t whole_lines_length(int fd, uint64_t size) {
  char buf[64 * 1024];
  uint64_t end = size;
  while (end > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(end, sizeof buf));
    ssize_t got = ::pread(fd, buf, n, static_cast<off_t>(end - n));
    if (got != static_cast<ssize_t>(n)) return size;  // unreadable: keep it as it is
    for (size_t i = n; i > 0; --i)
      if (buf[i - 1] == '\n') return end - n + i;
    end -= n;
  }
  return 0;
}

}  // namespace

FileOutput::~FileOutput() {
  if (fd_ > STDOUT_FILENO) ::close(fd_);
}

std::optional<uint64_t> FileOutput::file_id() const {
  if (!regular_ || is_stdout() || stream_) return std::nullopt;
  return inode_;
}

std::optional<uint64_t> FileOutput::durable_length() const {
  if (!regular_ || is_stdout() || stream_) return std::nullopt;
  return length_;
}

asio::awaitable<void> FileOutput::open(std::optional<uint64_t> resume_length) {
  // The standard streams are written as they are: never truncated, not checkpointed.
  if (is_stdout() || path_ == "/dev/stdout" || path_ == "/dev/stderr") {
    fd_ = is_stdout() ? STDOUT_FILENO : ::dup(path_ == "/dev/stdout" ? STDOUT_FILENO : STDERR_FILENO);
    if (fd_ < 0) throw SetupError(path_ + ": " + std::strerror(errno));
    stream_ = !is_stdout();
    struct stat st {};
    stream_file_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    co_return;
  }
  std::string path = path_;
  bool append = append_;
  const FileOutputRules* rules = &rules_;
  const RunControl* control = &ctx_.control;
  struct Opened {
    int fd = -1;
    int err = 0;
    bool stopped = false;  // a FIFO had no reader before the run stopped
    bool unreadable = false;
    uint64_t size = 0;
    bool regular = false;
    uint64_t torn = 0;
    uint64_t inode = 0;
    bool line_break_added = false;
    std::string head;
  };
  auto job = [path, append, resume_length, rules, control]() {
    Opened o;
    struct stat st {};
    bool special = ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
    bool readable = !special;  // a FIFO opened for reading too would swallow what we write
    if (special) {
      // Without O_NONBLOCK a FIFO's open waits for a reader and no stop could end it.
      while ((o.fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 && errno == ENXIO) {
        if (control->stopping()) {
          o.stopped = true;
          return o;
        }
        ::usleep(50 * 1000);
      }
      if (o.fd >= 0) ::fcntl(o.fd, F_SETFL, ::fcntl(o.fd, F_GETFL) & ~O_NONBLOCK);
    } else {
      o.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
      if (o.fd < 0 && errno == EACCES) {
        readable = false;
        o.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
      }
    }
    if (o.fd < 0) {
      o.err = errno;
      return o;
    }
    if (::fstat(o.fd, &st) != 0) {
      o.err = errno;
      return o;
    }
    o.regular = S_ISREG(st.st_mode);
    o.size = static_cast<uint64_t>(st.st_size);
    o.inode = static_cast<uint64_t>(st.st_ino);
    if (!o.regular) return o;
    uint64_t keep = resume_length ? *resume_length : append ? o.size : 0;
    if (keep > o.size) return o;  // reported by the caller
    if (!readable && keep > 0 && rules->needs_head) {
      o.unreadable = true;
      return o;
    }
    if (readable) {
      o.head.resize(static_cast<size_t>(std::min<uint64_t>(keep, 64 * 1024)));
      ssize_t n = ::pread(o.fd, o.head.data(), o.head.size(), 0);
      o.head.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
    if (!resume_length && append && readable) {
      uint64_t whole = whole_lines_length(o.fd, o.size);
      std::string last(static_cast<size_t>(std::min<uint64_t>(o.size - whole, 16 << 20)), '\0');
      bool complete = whole < o.size && last.size() == o.size - whole && rules->complete_line &&
                      ::pread(o.fd, last.data(), last.size(), static_cast<off_t>(whole)) ==
                          static_cast<ssize_t>(last.size()) &&
                      rules->complete_line(last);
      if (complete) {
        if (::pwrite(o.fd, "\n", 1, static_cast<off_t>(o.size)) != 1) {
          o.err = errno;
          return o;
        }
        o.size += 1;
        keep = o.size;
        o.line_break_added = true;
      } else {
        keep = whole;
        o.torn = o.size - whole;
      }
    }
    if (keep < o.size && ::ftruncate(o.fd, static_cast<off_t>(keep)) != 0) {
      o.err = errno;
      return o;
    }
    o.size = keep;
    if (o.head.size() > keep) o.head.resize(static_cast<size_t>(keep));
    return o;
  };
  Opened o = co_await run_blocking(ctx_.pool.pool(), job);
  if (o.fd >= 0) fd_ = o.fd;
  if (o.stopped) {
    gone_ = true;
    co_return;
  }
  if (o.err) throw SetupError(path_ + ": " + std::strerror(o.err));
  if (o.unreadable) throw SetupError(path_ + ": cannot read it, and appending needs its header row");
  if (resume_length && o.regular && *resume_length > o.size)
    throw SetupError(path_ + ": shorter than the checkpoint says (" + std::to_string(o.size) + " < " +
                     std::to_string(*resume_length) +
                     " bytes): it was changed outside aetl; run with --from-start to begin again");
  if (o.torn)
    spdlog::warn("{}: cut {} byte{} of an unfinished last line (an earlier run was killed while writing it)", path_,
                 o.torn, o.torn == 1 ? "" : "s");
  if (o.line_break_added) spdlog::warn("{}: its last line had no line break: added one before appending", path_);
  regular_ = o.regular;
  inode_ = o.inode;
  length_ = o.size;
  head_ = std::move(o.head);
}

asio::awaitable<bool> FileOutput::write(const std::string& data) {
  if (gone_) co_return false;
  int fd = fd_;
  bool regular = regular_;
  bool whole = regular_ || stream_file_;  // written without polling
  bool sync = fsync_ && whole;
  uint64_t at = length_;
  const RunControl* control = &ctx_.control;
  size_t size = data.size();
  // 0 ok, -1 closed pipe, -3 given up (aborted), else errno
  // `data` outlives the job: this coroutine waits for it.
  bool shared = !regular;  // stdout (several sinks of a --dry-run), a pipe: one batch at a time, never interleaved
  auto job = [fd, regular, whole, sync, at, control, shared, &data]() -> int {
    std::unique_lock<std::mutex> one_at_a_time;
    if (shared) one_at_a_time = std::unique_lock<std::mutex>(stream_write_mutex());
    const char* p = data.data();
    size_t left = data.size();
    off_t off = static_cast<off_t>(at);
    while (left > 0) {
      ssize_t n;
      if (regular) {
        n = ::pwrite(fd, p, left, off);
      } else if (whole) {
        n = ::write(fd, p, left);
      } else {
        pollfd pfd{fd, POLLOUT, 0};
        int r = ::poll(&pfd, 1, 200);
        if (r < 0 && errno != EINTR) return errno;
        if (r <= 0) {
          if (control->aborted()) return -3;
          continue;
        }
        n = ::write(fd, p, std::min<size_t>(left, PIPE_BUF));
      }
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        int e = errno;
        if (regular) (void)::ftruncate(fd, static_cast<off_t>(at));  // no partial batch left behind
        return e == EPIPE ? -1 : e;
      }
      p += n;
      off += n;
      left -= static_cast<size_t>(n);
    }
    if (sync && ::fdatasync(fd) != 0 && errno != EINVAL && errno != EROFS) {
      int e = errno;
      if (regular) (void)::ftruncate(fd, static_cast<off_t>(at));
      return e;
    }
    return 0;
  };
  int rc = co_await run_blocking(ctx_.pool.pool(), job);
  if (rc == -1 || rc == -3) co_return false;
  if (rc != 0) {
    // A stream cannot take back what part of the batch reached it: no retry.
    bool transient = regular_ && (rc == ENOSPC || rc == EDQUOT || rc == EIO || rc == EAGAIN);
    throw SinkError((is_stdout() ? std::string("stdout") : path_) + ": " + std::strerror(rc), transient);
  }
  length_ += size;
  co_return true;
}

asio::awaitable<void> FileOutput::close() {
  if (fd_ > STDOUT_FILENO) {
    int fd = fd_;
    fd_ = -1;
    auto job = [fd] { return ::close(fd) == 0 ? 0 : errno; };
    int rc = co_await run_blocking(ctx_.pool.pool(), job);
    if (rc != 0) throw SinkError(path_ + ": " + std::strerror(rc), false);
  }
}

}  // namespace aetl
