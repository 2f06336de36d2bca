#include "stages/fetch/body_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/xattr.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "engine/setup_error.h"
#include "engine/blocking_pool.h"
#include "engine/hash.h"

namespace aetl {
namespace {

constexpr size_t kChunk = 256 * 1024;          // written in one go
constexpr size_t kBuffer = kChunk + kChunk / 2;  // held at most while a write runs
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

/// fsyncs the directory holding `path` (its new entry outlives a crash).
void sync_parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    errno = e;
    throw SetupError(errno_text("fsync " + parent));
  }
  ::close(fd);
}

/// Creates `dir` and its missing parents, as `mkdir -p` does; `durable`: each
/// directory made is fsync'd into its parent. Throws SetupError naming the first
/// part that could not be made (e.g. a file in the way).
void make_dirs(const std::string& dir, bool durable) {
  for (size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    std::string part = dir.substr(0, end);
    if (!part.empty() && part.back() != '/') {
      if (::mkdir(part.c_str(), 0777) == 0) {
        if (durable) sync_parent(part);
      } else if (errno != EEXIST) {
        throw SetupError(errno_text(part));
      }
    }
    if (end == std::string::npos) return;
  }
}

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

/// A cached directory was removed while the run went on.
struct StaleDirectory {};

/// True when the directory open as `fd` was removed (no name links to it any more).
bool stale_directory(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_nlink == 0;
}

/// Closed when the store and every job that still needs them are gone.
struct BodyStore::Dirs {
  int dir_fd = -1;
  int partial_fd = -1;
  int run_fd = -1;  // this run's partial files; flock'd while the run lives
  std::string run_name;
  /// Temporary files are unnamed (O_TMPFILE in DIR) and linked into place through
  /// /proc/self/fd: no cross-directory rename, whose file-system-wide lock made
  /// the pool threads queue (F1save: a third of the CPU spinning on it), and
  /// nothing left behind by a crash. Else named files in the run directory.
  bool anonymous = false;
  /// Directories below DIR already walked (or made), by their path ending in '/':
  /// a body's directory is opened once per run, not once per body. Entries are
  /// never closed before the store is (a pool thread may be using one); one found
  /// stale (removed behind our back) is retired and walked again.
  std::mutex walked_mu;
  std::unordered_map<std::string, int> walked;
  std::vector<int> retired;
  static constexpr size_t kMaxWalked = 4096;
  ~Dirs() {
    for (auto& [rel, fd] : walked) ::close(fd);
    for (int fd : retired) ::close(fd);
    if (run_fd >= 0) {
      ::unlinkat(partial_fd, run_name.c_str(), AT_REMOVEDIR);
      ::close(run_fd);
    }
    if (partial_fd >= 0) {
      ::unlinkat(dir_fd, kPartialDir, AT_REMOVEDIR);  // only succeeds when no other run uses it
      ::close(partial_fd);
    }
    if (dir_fd >= 0) ::close(dir_fd);
  }
};

bool BodyStoreError::transient() const { return code_ == EMFILE || code_ == ENFILE; }

namespace {

[[noreturn]] void fail(const std::string& what, int code) {
  throw BodyStoreError(what + ": " + std::strerror(code), code);
}

std::string random_tag() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

/// Makes DIR/.afetch-partial/run-PID-TAG and locks it. A run ending or cleaning at
/// the same moment may remove a directory under our feet: then we start over.
void open_run_dir(BodyStore::Dirs& d, const std::string& dir) {
  std::string partial = dir + "/" + kPartialDir;
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (::mkdirat(d.dir_fd, kPartialDir, 0777) != 0 && errno != EEXIST) throw SetupError(errno_text(partial));
    d.partial_fd = ::openat(d.dir_fd, kPartialDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d.partial_fd < 0) {
      if (errno == ENOENT) continue;
      throw SetupError(errno_text(partial));
    }
    d.run_name = "run-" + std::to_string(::getpid()) + "-" + random_tag();
    if (::mkdirat(d.partial_fd, d.run_name.c_str(), 0700) == 0)
      d.run_fd = ::openat(d.partial_fd, d.run_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d.run_fd < 0) {
      int e = errno;
      ::close(d.partial_fd);
      d.partial_fd = -1;
      if (e == ENOENT) continue;
      errno = e;
      throw SetupError(errno_text(partial + "/" + d.run_name));
    }
    struct stat st {};
    if (::flock(d.run_fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(d.run_fd, &st) == 0 && st.st_nlink > 0) return;
    ::close(d.run_fd);  // a cleaner took it for a dead run's between mkdir and flock
    d.run_fd = -1;
    ::close(d.partial_fd);
    d.partial_fd = -1;
  }
  throw SetupError(partial + ": cannot make a directory for this run's partial files");
}

/// Calls `each(name)` for the entries of directory `fd` (not . and ..).
template <class F>
void for_each_entry(int fd, F each) {
  int copy = ::dup(fd);
  if (copy < 0) return;
  DIR* d = ::fdopendir(copy);
  if (!d) {
    ::close(copy);
    return;
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") each(std::string(name));
  }
  ::closedir(d);
}

/// True for "PID-N.part" (older versions' partial files) whose process is gone.
bool orphan_of_older_version(const std::string& name) {
  unsigned long pid = 0, n = 0;
  int used = 0;
  if (std::sscanf(name.c_str(), "%lu-%lu.part%n", &pid, &n, &used) != 2 || used != static_cast<int>(name.size()))
    return false;
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

/// Removes the partial files of runs that died: a run directory whose lock can be
/// taken has no live owner. Best effort: what cannot be removed stays.
void clean_dead_runs(const BodyStore::Dirs& d) {
  for_each_entry(d.partial_fd, [&](const std::string& name) {
    if (name == d.run_name) return;
    if (name.rfind("run-", 0) != 0) {
      if (orphan_of_older_version(name)) ::unlinkat(d.partial_fd, name.c_str(), 0);
      return;
    }
    int run = ::openat(d.partial_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (run < 0) return;
    if (::flock(run, LOCK_EX | LOCK_NB) == 0) {
      for_each_entry(run, [run](const std::string& file) { ::unlinkat(run, file.c_str(), 0); });
      ::unlinkat(d.partial_fd, name.c_str(), AT_REMOVEDIR);
    }
    ::close(run);
  });
}

/// Writes all of `data` at `offset`; returns an error message or empty.
std::string write_all(int fd, const std::string& data, uint64_t offset) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::pwrite(fd, p, left, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::strerror(errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

/// Creates this body's temporary file in the run directory (on the pool). Returns
/// the descriptor or -errno at once: out of descriptors (EMFILE, ENFILE) the caller
/// keeps the data and tries again later, never sleeping on a pool thread.
int create_temp(const BodyStore::Dirs& d, const std::string& name) {
  int fd = d.anonymous ? ::openat(d.dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0666)
                       : ::openat(d.run_fd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
  return fd >= 0 ? fd : -errno;
}

/// Whether DIR takes unnamed temporary files that can be linked into place later.
bool anonymous_temps_work(int dir_fd) {
  if (::access("/proc/self/fd", X_OK) != 0) return false;
  int fd = ::openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool out_of_fds(int e) { return e == EMFILE || e == ENFILE; }

/// Held in memory at most while the temporary file cannot be created for want of
/// descriptors; past it the transfer fails (transiently: a retry may succeed).
constexpr size_t kMaxHeldWithoutFile = 4 * kChunk;

constexpr char kOwnerAttr[] = "user.afetch.owner";

/// True if `name` in `dir` is a regular file tagged with `tag`. Throws when out of
/// descriptors (a wrong "no" would make a needless NAME.1).
bool owned_by(int dir, const std::string& name, const std::string& tag) {
  int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EMFILE || errno == ENFILE) fail("checking " + name, errno);
    return false;
  }
  struct stat st {};
  char buf[80];
  ssize_t n = -1;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) n = ::fgetxattr(fd, kOwnerAttr, buf, sizeof buf);
  ::close(fd);
  return n == static_cast<ssize_t>(tag.size()) && std::string_view(buf, static_cast<size_t>(n)) == tag;
}

}  // namespace

struct BodyStore::File::Shared {
  Shared(BodyStore& s, int f, std::string n)
      : store(s), dirs(s.dirs_), fd(f), temp_name(std::move(n)), idle(s.io_) {}
  BodyStore& store;
  std::shared_ptr<Dirs> dirs;
  // -1 until a pool job creates the temporary file; atomic as write_now() reads it
  // while the first write (which creates the file) may still run on the pool.
  std::atomic<int> fd;
  std::string temp_name;
  std::string current;      // filling, on the loop
  std::string writing;      // being written by the pool
  uint64_t write_offset = 0;  // where `writing` goes
  uint64_t size = 0;          // bytes accepted in this attempt
  bool write_in_flight = false;
  bool abandoned = false;     // the File is gone: the running write's completion cleans up
  bool paused = false;
  std::string error;          // first write error
  int error_code = 0;         // its errno (EIO when unknown)
  int create_errno = 0;       // the last try to create the file ran out of descriptors: data kept in `current`
  asio::steady_timer idle;    // cancelled when a write completes
  std::function<void()> resume;
};

BodyStore::BodyStore(std::string dir, asio::io_context& io, BlockingPool& pool, bool resumable, TempFiles temps)
    : dir_(std::move(dir)), io_(io), pool_(pool), resumable_(resumable), dirs_(std::make_shared<Dirs>()) {
  make_dirs(dir_, resumable);
  dirs_->dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirs_->dir_fd < 0) throw SetupError(errno_text(dir_));
  open_run_dir(*dirs_, dir_);
  clean_dead_runs(*dirs_);
  dirs_->anonymous = temps == TempFiles::unnamed_if_possible && anonymous_temps_work(dirs_->dir_fd);
}

BodyStore::~BodyStore() = default;

std::string BodyStore::temp_path(const std::string& temp_name) const {
  return dir_ + "/" + kPartialDir + "/" + dirs_->run_name + "/" + temp_name;
}

asio::awaitable<std::unique_ptr<BodyStore::File>> BodyStore::open() {
  // The temporary file itself is created by the first job that writes to it (a
  // write of a large body, or the commit of a small one): no pool round trip here.
  std::string name = std::to_string(++counter_) + ".part";
  co_return std::unique_ptr<File>(new File(std::make_shared<File::Shared>(*this, -1, std::move(name))));
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
  if (s.write_in_flight) {
    s.abandoned = true;  // its completion (on the loop) cleans up: no close during pwrite
    return;
  }
  if (s.fd < 0) return;  // committed, discarded, or never created
  post_cleanup(s.store.pool_.pool(), s.dirs, s.fd, s.temp_name);
  s.fd = -1;
}

void BodyStore::File::begin() {
  shared_->current.clear();
  shared_->write_offset = 0;
  shared_->size = 0;
  shared_->error.clear();
  shared_->error_code = 0;
  shared_->create_errno = 0;
}

std::string BodyStore::File::failure_message() const { return "saving body: " + shared_->error; }

bool BodyStore::File::failed() const { return !shared_->error.empty(); }

BodyConsumer::Verdict BodyStore::File::on_data(std::string_view chunk) {
  auto& s = *shared_;
  if (!s.error.empty()) return Verdict::fail;
  if (s.create_errno != 0 && s.current.size() + chunk.size() > kMaxHeldWithoutFile) {
    // Still no file after several tries: fail this attempt rather than hold the body in memory.
    s.error = s.store.temp_path(s.temp_name) + ": " + std::strerror(s.create_errno);
    s.error_code = s.create_errno;
    return Verdict::fail;
  }
  // A body past 64 KiB gets the whole buffer at once (no growth by doubling); a
  // small one never asks for it (384 KiB would be an mmap and munmap per body).
  if (s.current.size() + chunk.size() > 64 * 1024 && s.current.capacity() < kBuffer) s.current.reserve(kBuffer);
  if (s.write_in_flight && s.current.size() + chunk.size() > kBuffer) {
    write_now();  // a burst while the pool writes (decoding one read): no unbounded buffer
    if (!s.error.empty()) return Verdict::fail;
  }
  s.current.append(chunk);
  s.size += chunk.size();
  if (s.current.size() < kChunk) return Verdict::accepted;
  if (!s.write_in_flight) {
    start_write();
    return Verdict::accepted;
  }
  s.paused = true;  // the transfer waits for the disk; the write's completion resumes it
  return Verdict::accepted_pause;
}

void BodyStore::File::write_now() {
  auto& s = *shared_;
  int fd = s.fd.load(std::memory_order_acquire);
  if (fd < 0) return;  // the write in flight is still creating the file: keep the data a moment longer
  std::string err = write_all(fd, s.current, s.write_offset);
  if (!err.empty() && s.error.empty()) {
    s.error = err;
    s.error_code = EIO;
  }
  s.write_offset += s.current.size();
  s.current.clear();
}

void BodyStore::File::start_write() {
  auto s = shared_;
  s->writing.swap(s->current);  // `current` takes the other buffer, capacity kept
  s->current.clear();
  s->write_in_flight = true;
  uint64_t offset = s->write_offset;
  s->write_offset += s->writing.size();
  // Captures the resume function now: the consumer's own hook lives in BodyConsumer.
  std::string path = s->store.temp_path(s->temp_name);
  asio::post(s->store.pool_.pool(), [s, offset, path, this_resume = this] {
    std::string err;
    int code = 0;
    if (s->fd < 0) {  // the first write creates the file (write_now() waits for it)
      int fd = create_temp(*s->dirs, s->temp_name);
      if (fd < 0) {
        code = -fd;
        err = path + ": " + std::strerror(code);
      } else {
        s->fd.store(fd, std::memory_order_release);
      }
    }
    if (err.empty()) {
      err = write_all(s->fd, s->writing, offset);
      if (!err.empty()) code = EIO;
    }
    asio::post(s->store.io_, [s, err, code, offset, this_resume] {
      s->write_in_flight = false;
      if (s->abandoned) {
        s->writing.clear();
        if (s->fd >= 0) post_cleanup(s->store.pool_.pool(), s->dirs, s->fd, s->temp_name);
        s->fd = -1;
        return;
      }
      if (out_of_fds(code) && s->fd < 0) {
        // No file yet (out of descriptors): nothing was written. The data goes back in
        // front of what came since, at its offset; the next write or commit tries again.
        s->writing.append(s->current);
        s->writing.swap(s->current);
        s->write_offset = offset;
        s->create_errno = code;
      } else {
        s->create_errno = 0;
        if (!err.empty() && s->error.empty()) {
          s->error = err;
          s->error_code = code;
        }
      }
      s->writing.clear();  // keeps its capacity for the next swap
      s->idle.cancel();
      if (s->paused) {
        s->paused = false;
        if (this_resume) this_resume->resume();  // not abandoned: the File is alive
      }
    });
  });
}

asio::awaitable<void> BodyStore::File::settle() {
  auto s = shared_;
  while (s->write_in_flight) {
    s->idle.expires_at(asio::steady_timer::time_point::max());
    asio::error_code ec;
    co_await s->idle.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<std::string> BodyStore::File::commit(const UrlParts& url, std::string_view owner) {
  // One pool job does the rest: create the file if no write has (a small body),
  // write what is left, then move it into place.
  co_await settle();
  auto s = shared_;
  if (!s->error.empty()) throw BodyStoreError(s->error, s->error_code ? s->error_code : EIO);
  std::vector<std::string> segments = body_path_segments(url);
  BodyStore& store = s->store;
  uint64_t size = s->size;
  bool durable = store.resumable_;
  std::string tag = store.resumable_ && !owner.empty() ? sha256_hex(owner) : std::string();
  auto dirs = s->dirs;
  int dir_fd = dirs->dir_fd, run_fd = dirs->run_fd;
  std::string temp_path = store.temp_path(s->temp_name);
  // `s` is only touched by this job until it returns (the transfer is over and no
  // write is in flight); a job that throws leaves `current` (and `write_offset`) for a
  // retry of commit(): out of descriptors, the caller retries on the loop's timers.
  auto attempt = [=]() -> std::string {
    const std::string& temp = s->temp_name;
    bool fresh = false;
    if (s->fd < 0) {
      int fd = create_temp(*dirs, temp);
      if (fd < 0) fail(temp_path, -fd);
      s->fd = fd;
      fresh = true;
    }
    int fd = s->fd;
    if (!s->current.empty()) {
      std::string err = write_all(fd, s->current, s->write_offset);
      if (!err.empty()) throw BodyStoreError(temp_path + ": " + err, EIO);
      s->write_offset += s->current.size();
      s->current.clear();  // written: a retry of this job (out of descriptors below) must not write it again
    }
    // A file an earlier attempt wrote more to is cut to this attempt's size.
    if (!fresh && ::ftruncate(fd, static_cast<off_t>(size)) != 0) fail("truncate", errno);
    if (!tag.empty()) ::fsetxattr(fd, kOwnerAttr, tag.data(), tag.size(), 0);  // unsupported: NAME.1 as ever
    if (durable && ::fsync(fd) != 0) fail("fsync", errno);
    // The body's directory: walked before, or walked (made) now without following symlinks.
    std::string dir_rel;
    for (size_t k = 0; k + 1 < segments.size(); ++k) dir_rel += segments[k] + "/";
    bool cached = false;  // cur belongs to dirs->walked: not closed here
    int cur = -1;
    {
      std::lock_guard lock(dirs->walked_mu);
      if (auto it = dirs->walked.find(dir_rel); it != dirs->walked.end()) {
        cur = it->second;
        cached = true;
      }
    }
    auto close_cur = [&] {
      if (!cached) ::close(cur);
    };
    std::string rel;
    size_t i = 0;
    if (cached) {
      rel = dir_rel;
      i = segments.size() - 1;
    } else {
      cur = ::dup(dir_fd);
      if (cur < 0) fail("saving " + segments.front(), errno);
      constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
      for (; i + 1 < segments.size(); ++i) {
        const char* seg = segments[i].c_str();
        int next = ::openat(cur, seg, kDirFlags);  // most often there already
        int e = next < 0 ? errno : 0;
        if (next < 0 && e == ENOENT) {
          e = ::mkdirat(cur, seg, 0777) == 0 ? 0 : errno;
          // A directory made here must outlive a crash as the file in it does.
          if (e == 0 && durable && ::fsync(cur) != 0) {
            e = errno;
            ::close(cur);
            fail("fsync " + (rel.empty() ? std::string(".") : rel), e);
          }
          if (e == 0 || e == EEXIST) {
            next = ::openat(cur, seg, kDirFlags);
            e = next < 0 ? errno : 0;
          }
        }
        if (next < 0 && (e == ENOTDIR || e == ELOOP)) break;  // a file (or a symlink) is in the way: flatten the rest
        if (next < 0) {
          ::close(cur);
          fail("saving " + rel + segments[i], e);
        }
        ::close(cur);
        cur = next;
        rel += segments[i] + "/";
      }
      if (i + 1 == segments.size()) {  // walked to the end: kept for the next body there
        std::lock_guard lock(dirs->walked_mu);
        if (dirs->walked.size() < Dirs::kMaxWalked) cached = dirs->walked.emplace(rel, cur).second;
      }
    }
    std::string leaf = segments[i];
    for (size_t k = i + 1; k < segments.size(); ++k) leaf += "%2F" + segments[k];
    std::string name = leaf;
    int rc = -1;
    bool moved = false;     // renamed: the temporary name is gone
    bool no_rename2 = false;  // the file system has no RENAME_NOREPLACE: link, then unlink
    const bool anonymous = dirs->anonymous;
    const std::string proc_path = "/proc/self/fd/" + std::to_string(fd);
    try {
      for (int n = 1; n <= 10000; ++n) {
        if (anonymous) {
          rc = ::linkat(AT_FDCWD, proc_path.c_str(), cur, name.c_str(), AT_SYMLINK_FOLLOW);
          moved = rc == 0;
        } else if (!no_rename2) {
          rc = ::renameat2(run_fd, temp.c_str(), cur, name.c_str(), RENAME_NOREPLACE);
          if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) no_rename2 = true;
          moved = rc == 0;
        }
        if (no_rename2 && !anonymous) rc = ::linkat(run_fd, temp.c_str(), cur, name.c_str(), 0);
        if (rc != 0 && errno == ENOENT && cached && stale_directory(cur)) {
          // removed behind our back since it was walked: walk (make) it again
          {
            std::lock_guard lock(dirs->walked_mu);
            if (auto it = dirs->walked.find(rel); it != dirs->walked.end() && it->second == cur) {
              dirs->retired.push_back(cur);
              dirs->walked.erase(it);
            }
          }
          throw StaleDirectory{};
        }
        if (rc == 0 || errno != EEXIST) break;
        if (!tag.empty() && owned_by(cur, name, tag)) {  // this request's own file, left by an interrupted run
          if (anonymous) {
            // replaced, not atomically: a crash in between leaves no file, and the
            // request (not recorded as done) is fetched again
            rc = ::unlinkat(cur, name.c_str(), 0);
            if (rc == 0 || errno == ENOENT) rc = ::linkat(AT_FDCWD, proc_path.c_str(), cur, name.c_str(), AT_SYMLINK_FOLLOW);
          } else {
            rc = ::renameat(run_fd, temp.c_str(), cur, name.c_str());
          }
          moved = rc == 0;
          break;
        }
        name = leaf + "." + std::to_string(n);
      }
    } catch (...) {
      close_cur();
      throw;
    }
    int saved = errno;
    if (rc == 0 && durable && ::fsync(cur) != 0) {  // the new name must be durable before the request counts
      rc = -1;
      saved = errno;
    }
    close_cur();
    if (rc != 0) fail("saving " + rel + leaf, saved);
    if (!moved && !anonymous) ::unlinkat(run_fd, temp.c_str(), 0);
    ::close(fd);
    s->fd = -1;
    return rel + name;
  };
  auto job = [attempt]() -> std::string {
    try {
      return attempt();
    } catch (const StaleDirectory&) {
      return attempt();  // walks the directories again
    }
  };
  std::string result = co_await run_blocking(store.pool_.pool(), job);
  s->current.clear();
  co_return result;
}

asio::awaitable<void> BodyStore::File::discard() {
  co_await settle();
  auto s = shared_;
  s->current.clear();
  int fd = s->fd;
  if (fd < 0) co_return;  // never created: nothing on disk
  s->fd = -1;
  auto dirs = s->dirs;
  std::string temp = s->temp_name;
  auto job = [fd, dirs, temp] {
    ::close(fd);
    if (!dirs->anonymous) ::unlinkat(dirs->run_fd, temp.c_str(), 0);
    return 0;
  };
  co_await run_blocking(s->store.pool_.pool(), job);
}

namespace {

void post_cleanup(asio::thread_pool& pool, std::shared_ptr<BodyStore::Dirs> dirs, int fd, std::string name) {
  asio::post(pool, [dirs = std::move(dirs), fd, name = std::move(name)] {
    ::close(fd);
    if (!dirs->anonymous) ::unlinkat(dirs->run_fd, name.c_str(), 0);
  });
}

}  // namespace

}  // namespace aetl
