#include "pipeline/stages/body_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "pipeline/hash.h"
#include <cstring>
#include <stdexcept>

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "cli/errors.h"
#include "pipeline/blocking_pool.h"

namespace aetl {
namespace {

constexpr size_t kChunk = 256 * 1024;
constexpr size_t kMaxSegment = 200;
constexpr char kPartialDir[] = ".afetch-partial";

bool safe_char(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '.': case '_': case '~': case '%': case '+': case '=': case ',': case '@': case '-':
      return true;
  }
  return false;
}

std::string encode_segment(std::string_view raw) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : raw) {
    if (safe_char(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  if (out == ".") out = "%2E";
  if (out == "..") out = "%2E%2E";
  if (out.size() > kMaxSegment) out = out.substr(0, kMaxSegment - 18) + "~" + fnv1a_hex(raw);
  return out;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

std::vector<std::string> body_path_segments(const UrlParts& url) {
  std::vector<std::string> segments;
  std::string host = url.host;
  bool default_port = (url.scheme == "http" && url.port == "80") || (url.scheme == "https" && url.port == "443");
  if (!default_port) host += "_" + url.port;
  segments.push_back(encode_segment(host));
  std::string_view path = url.path;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(start, slash - start);
    if (!seg.empty()) segments.push_back(std::string(seg));
    start = slash + 1;
  }
  bool ends_with_slash = path.empty() || path.back() == '/';
  if (segments.size() == 1 || ends_with_slash) segments.push_back("index.html");
  if (!url.query.empty()) segments.back() += "?" + url.query;
  for (size_t i = 1; i < segments.size(); ++i) segments[i] = encode_segment(segments[i]);
  return segments;
}

/// Closed when the store and every job that still needs them are gone.
struct BodyStore::Dirs {
  int dir_fd = -1;
  int partial_fd = -1;
  ~Dirs() {
    if (partial_fd >= 0) {
      ::unlinkat(dir_fd, kPartialDir, AT_REMOVEDIR);  // only succeeds when empty
      ::close(partial_fd);
    }
    if (dir_fd >= 0) ::close(dir_fd);
  }
};

struct BodyStore::File::Shared {
  Shared(BodyStore& s, int f, std::string n)
      : store(s), dirs(s.dirs_), fd(f), temp_name(std::move(n)), idle(s.io_) {}
  BodyStore& store;
  std::shared_ptr<Dirs> dirs;
  int fd;
  std::string temp_name;
  std::string current;      // filling, on the loop
  std::string writing;      // being written by the pool
  uint64_t write_offset = 0;  // where `writing` goes
  uint64_t size = 0;          // bytes accepted in this attempt
  bool write_in_flight = false;
  bool abandoned = false;     // the File is gone: the running write's completion cleans up
  bool paused = false;
  std::string error;          // first write error
  asio::steady_timer idle;    // cancelled when a write completes
  std::function<void()> resume;
};

BodyStore::BodyStore(std::string dir, asio::io_context& io, BlockingPool& pool, bool durable)
    : dir_(std::move(dir)), io_(io), pool_(pool), durable_(durable), dirs_(std::make_shared<Dirs>()) {
  if (::mkdir(dir_.c_str(), 0777) != 0 && errno != EEXIST) throw UsageError(errno_text(dir_));
  dirs_->dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirs_->dir_fd < 0) throw UsageError(errno_text(dir_));
  if (::mkdirat(dirs_->dir_fd, kPartialDir, 0777) != 0 && errno != EEXIST)
    throw UsageError(errno_text(dir_ + "/" + kPartialDir));
  dirs_->partial_fd = ::openat(dirs_->dir_fd, kPartialDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirs_->partial_fd < 0) throw UsageError(errno_text(dir_ + "/" + kPartialDir));
}

BodyStore::~BodyStore() = default;

asio::awaitable<std::unique_ptr<BodyStore::File>> BodyStore::open() {
  std::string name = std::to_string(::getpid()) + "-" + std::to_string(++counter_) + ".part";
  int partial = dirs_->partial_fd;
  auto job = [partial, name] {
    int fd = ::openat(partial, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
    return fd >= 0 ? fd : -errno;  // errno belongs to the pool thread
  };
  int fd = co_await run_blocking(pool_.pool(), job);
  if (fd < 0) throw std::runtime_error(dir_ + "/" + kPartialDir + "/" + name + ": " + std::strerror(-fd));
  co_return std::unique_ptr<File>(new File(std::make_shared<File::Shared>(*this, fd, name)));
}

BodyStore::File::File(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {
  set_resume(nullptr);
}

namespace {

/// Closes and removes a temporary body file on the pool (never on the loop).
void post_cleanup(asio::thread_pool& pool, std::shared_ptr<BodyStore::Dirs> dirs, int fd, std::string name);

}  // namespace

BodyStore::File::~File() {
  auto& s = *shared_;
  if (s.fd < 0) return;  // committed or discarded
  if (s.write_in_flight) {
    s.abandoned = true;  // its completion (on the loop) cleans up: no close during pwrite
    return;
  }
  post_cleanup(s.store.pool_.pool(), s.dirs, s.fd, s.temp_name);
  s.fd = -1;
}

void BodyStore::File::begin() {
  shared_->current.clear();
  shared_->write_offset = 0;
  shared_->size = 0;
  shared_->error.clear();
}

std::string BodyStore::File::failure_message() const { return "saving body: " + shared_->error; }

BodyConsumer::Verdict BodyStore::File::on_data(std::string_view chunk) {
  auto& s = *shared_;
  if (!s.error.empty()) return Verdict::fail;
  if (s.current.size() + chunk.size() > kChunk && s.write_in_flight) {
    s.paused = true;  // curl keeps this chunk and hands it to us again after resume
    return Verdict::pause;
  }
  if (s.current.capacity() < kChunk) s.current.reserve(kChunk + kChunk / 2);  // no growth by doubling
  s.current.append(chunk);
  s.size += chunk.size();
  if (s.current.size() >= kChunk && !s.write_in_flight) start_write();
  return Verdict::accepted;
}

void BodyStore::File::start_write() {
  auto s = shared_;
  s->writing.swap(s->current);  // `current` takes the other buffer, capacity kept
  s->current.clear();
  s->write_in_flight = true;
  uint64_t offset = s->write_offset;
  s->write_offset += s->writing.size();
  // Captures the resume function now: the consumer's own hook lives in BodyConsumer.
  asio::post(s->store.pool_.pool(), [s, offset, this_resume = this] {
    const char* p = s->writing.data();
    size_t left = s->writing.size();
    uint64_t at = offset;
    std::string err;
    while (left > 0) {
      ssize_t n = ::pwrite(s->fd, p, left, static_cast<off_t>(at));
      if (n < 0) {
        if (errno == EINTR) continue;
        err = std::strerror(errno);
        break;
      }
      p += n;
      left -= static_cast<size_t>(n);
      at += static_cast<uint64_t>(n);
    }
    asio::post(s->store.io_, [s, err, this_resume] {
      s->write_in_flight = false;
      s->writing.clear();  // keeps its capacity for the next swap
      if (s->abandoned) {
        post_cleanup(s->store.pool_.pool(), s->dirs, s->fd, s->temp_name);
        s->fd = -1;
        return;
      }
      if (!err.empty() && s->error.empty()) s->error = err;
      s->idle.cancel();
      if (s->paused) {
        s->paused = false;
        if (this_resume) this_resume->resume();  // not abandoned: the File is alive
      }
    });
  });
}

asio::awaitable<void> BodyStore::File::drain() {
  auto s = shared_;
  for (;;) {
    while (s->write_in_flight) {
      s->idle.expires_at(asio::steady_timer::time_point::max());
      asio::error_code ec;
      co_await s->idle.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (s->current.empty()) break;
    start_write();
  }
}

asio::awaitable<std::string> BodyStore::File::commit(const UrlParts& url) {
  co_await drain();
  auto s = shared_;
  if (!s->error.empty()) throw std::runtime_error(s->error);
  std::vector<std::string> segments = body_path_segments(url);
  BodyStore& store = s->store;
  int fd = s->fd;
  uint64_t size = s->size;
  std::string temp = s->temp_name;
  bool durable = store.durable_;
  auto dirs = s->dirs;
  int dir_fd = dirs->dir_fd, partial_fd = dirs->partial_fd;
  auto job = [=, keep = dirs]() -> std::string {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) throw std::runtime_error(errno_text("truncate"));
    if (durable && ::fsync(fd) != 0) throw std::runtime_error(errno_text("fsync"));
    // Walk (or make) the directories below DIR without following symlinks.
    int cur = ::dup(dir_fd);
    std::string rel;
    size_t i = 0;
    for (; i + 1 < segments.size(); ++i) {
      ::mkdirat(cur, segments[i].c_str(), 0777);
      int next = ::openat(cur, segments[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) break;  // a file (or a symlink) is in the way: flatten the rest
      ::close(cur);
      cur = next;
      rel += segments[i] + "/";
    }
    std::string leaf = segments[i];
    for (size_t k = i + 1; k < segments.size(); ++k) leaf += "%2F" + segments[k];
    std::string name = leaf;
    int rc = -1;
    for (int n = 1; n <= 10000; ++n) {
      rc = ::linkat(partial_fd, temp.c_str(), cur, name.c_str(), 0);
      if (rc == 0 || errno != EEXIST) break;
      name = leaf + "." + std::to_string(n);
    }
    int saved = errno;
    if (rc == 0 && durable) ::fsync(cur);
    ::close(cur);
    if (rc != 0) {
      errno = saved;
      throw std::runtime_error(errno_text("saving " + rel + leaf));
    }
    ::unlinkat(partial_fd, temp.c_str(), 0);
    return rel + name;
  };
  std::string result = co_await run_blocking(store.pool_.pool(), job);
  ::close(fd);
  s->fd = -1;
  co_return result;
}

asio::awaitable<void> BodyStore::File::discard() {
  co_await drain();
  auto s = shared_;
  int fd = s->fd;
  s->fd = -1;
  auto dirs = s->dirs;
  std::string temp = s->temp_name;
  auto job = [fd, dirs, temp] {
    ::close(fd);
    ::unlinkat(dirs->partial_fd, temp.c_str(), 0);
    return 0;
  };
  co_await run_blocking(s->store.pool_.pool(), job);
}

namespace {

void post_cleanup(asio::thread_pool& pool, std::shared_ptr<BodyStore::Dirs> dirs, int fd, std::string name) {
  asio::post(pool, [dirs = std::move(dirs), fd, name = std::move(name)] {
    ::close(fd);
    ::unlinkat(dirs->partial_fd, name.c_str(), 0);
  });
}

}  // namespace

}  // namespace aetl
