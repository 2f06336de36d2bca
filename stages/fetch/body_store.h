#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

#include "net/http/http_types.h"
#include "net/http/url_check.h"

namespace aetl {

class BlockingPool;

/// The relative file name for a URL's body: host (with the port when it is not
/// the scheme's default), then the path's segments, then the query. Every byte
/// outside [A-Za-z0-9._~%+=,@-] is %-encoded; "." and ".." segments and empty
/// segments cannot occur; overlong segments are shortened with a hash; a path
/// ending in "/" gets "index.html". The result never starts with "/" and never
/// names anything outside the output directory.
std::vector<std::string> body_path_segments(const UrlParts& url);

/// A file system error while saving a body; `code()` is its errno.
class BodyStoreError : public std::runtime_error {
 public:
  BodyStoreError(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }
  /// Out of file descriptors (EMFILE, ENFILE): worth another try once others are closed.
  bool transient() const;

 private:
  int code_;
};

/// Saves response bodies under one directory (afetch -o DIR), safely:
///  - bodies stream into temporary files under DIR/.afetch-partial/run-PID-TAG/,
///    a directory of this run that it holds an flock on; only a complete, successful
///    body is moved into place. A store removes, when it starts, the partial files of
///    runs that died (directories whose lock nobody holds; files of older versions,
///    PID-N.part, whose process is gone), never those of a live run;
///  - directories are walked with O_NOFOLLOW from DIR's descriptor, so neither
///    a URL nor a symlink planted in DIR can lead a write outside it;
///  - an existing file is never replaced: the body gets NAME.1, NAME.2, ... (as wget
///    does), and a file in the way of a directory makes the name flat (a%2Fb);
///    the one exception: in a `resumable` store (afetch --state) each file carries
///    its request's owner tag (a hash, in the user.afetch.owner extended attribute),
///    and a body of the same request replaces the file an interrupted run left;
///  - with `resumable`, the file, its directory and every directory made for it (at
///    start: DIR and its missing parents) are fsync'd before commit returns;
///    a failed fsync fails the save.
/// All file system work runs on the blocking pool (but for a burst that write_now()
/// takes on the loop). A body's temporary file is created by the first job that
/// needs it: a body smaller than one write chunk (256 KiB) costs one pool job, its
/// commit (create, write, move into place), and a discarded one that never reached
/// the disk costs none. Out of descriptors (EMFILE, ENFILE) when creating it, no pool
/// thread waits: the data stays in memory (at most about 1 MiB, past which on_data
/// fails the attempt with a transient error naming the file) and the next write, or
/// commit, tries again; commit throws a transient BodyStoreError for its caller to
/// retry later.
class BodyStore {
 public:
  /// Creates DIR and its missing parents (as mkdir -p), its partial-file directory,
  /// and cleans dead runs' partial files. Throws SetupError if DIR cannot be
  /// created (a file in the way, no permission) or opened.
  /// How temporary body files are made: unnamed in DIR (O_TMPFILE) where the file
  /// system allows, else named in the run's partial directory; `named` always the
  /// latter (the fallback, chosen by tests).
  enum class TempFiles { unnamed_if_possible, named };
  BodyStore(std::string dir, asio::io_context& io, BlockingPool& pool, bool resumable,
            TempFiles temps = TempFiles::unnamed_if_possible);
  ~BodyStore();

  class File;
  /// Starts one response body. Touches no file and does not throw: the temporary
  /// file is created later (see above), and a failure to create it is reported by
  /// on_data()/failure_message() or by commit().
  asio::awaitable<std::unique_ptr<File>> open();

  const std::string& dir() const { return dir_; }

  /// The directory descriptors, shared with jobs still queued on the pool (opaque).
  struct Dirs;

 private:
  friend class File;
  /// DIR/.afetch-partial/run-PID-TAG/NAME, for messages.
  std::string temp_path(const std::string& temp_name) const;
  std::string dir_;
  asio::io_context& io_;
  BlockingPool& pool_;
  bool resumable_;
  std::shared_ptr<Dirs> dirs_;
  uint64_t counter_ = 0;
};

/// One body being saved: a BodyConsumer that writes in large chunks off the loop
/// and pauses the transfer (accepted_pause) while the disk is behind. Memory stays
/// bounded however fast data comes: a burst larger than the buffer (a compressed
/// body decoded from one read) is written on the loop instead of held.
class BodyStore::File final : public BodyConsumer {
 public:
  ~File() override;
  void begin() override;
  Verdict on_data(std::string_view chunk) override;
  std::string failure_message() const override;
  /// True once writing this body failed (disk full, I/O error).
  bool failed() const;

  /// Flushes and moves the body into place; returns its path relative to DIR.
  /// `owner` identifies the request (its --state key): in a resumable store a file
  /// at the name that carries the same owner is replaced. Throws BodyStoreError; one
  /// that is transient() (out of descriptors, e.g. creating the temporary file,
  /// "PATH: Too many open files") keeps the body, and commit may be called again.
  asio::awaitable<std::string> commit(const UrlParts& url, std::string_view owner = {});
  /// Removes the temporary file.
  asio::awaitable<void> discard();
  /// Waits for a write still in flight (an earlier attempt's) to finish, starting
  /// none: before the next attempt's begin(), so no old write lands over its body.
  asio::awaitable<void> settle();

 private:
  friend class BodyStore;
  struct Shared;
  explicit File(std::shared_ptr<Shared> shared);
  void start_write();
  void write_now();

  std::shared_ptr<Shared> shared_;
};

}  // namespace aetl
