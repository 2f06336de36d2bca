#pragma once
#include <memory>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include "pipeline/http/http_types.h"
#include "pipeline/http/url_check.h"

namespace aetl {

class BlockingPool;

/// The relative file name for a URL's body: host (with the port when it is not
/// the scheme's default), then the path's segments, then the query. Every byte
/// outside [A-Za-z0-9._~%+=,@-] is %-encoded; "." and ".." segments and empty
/// segments cannot occur; overlong segments are shortened with a hash; a path
/// ending in "/" gets "index.html". The result never starts with "/" and never
/// names anything outside the output directory.
std::vector<std::string> body_path_segments(const UrlParts& url);

/// Saves response bodies under one directory (afetch -o DIR), safely:
///  - bodies stream into a temporary file under DIR/.afetch-partial/ and only a
///    complete, successful body is moved into place;
///  - directories are walked with O_NOFOLLOW from DIR's descriptor, so neither
///    a URL nor a symlink planted in DIR can lead a write outside it;
///  - an existing file is never replaced: the body gets NAME.1, NAME.2, ... (as wget
///    does), and a file in the way of a directory makes the name flat (a%2Fb);
///  - with `durable`, the file and its directory are fsync'd before commit returns.
/// All file system work runs on the blocking pool.
class BodyStore {
 public:
  /// Creates DIR if needed. Throws UsageError if it cannot be created or opened.
  BodyStore(std::string dir, asio::io_context& io, BlockingPool& pool, bool durable);
  ~BodyStore();

  class File;
  /// Opens a temporary file for one response body.
  asio::awaitable<std::unique_ptr<File>> open();

  const std::string& dir() const { return dir_; }

  /// The directory descriptors, shared with jobs still queued on the pool (opaque).
  struct Dirs;

 private:
  friend class File;
  std::string dir_;
  asio::io_context& io_;
  BlockingPool& pool_;
  bool durable_;
  std::shared_ptr<Dirs> dirs_;
  uint64_t counter_ = 0;
};

/// One body being saved: a BodyConsumer that writes in large chunks off the loop
/// and pauses the transfer while the disk is behind.
class BodyStore::File final : public BodyConsumer {
 public:
  ~File() override;
  void begin() override;
  Verdict on_data(std::string_view chunk) override;
  std::string failure_message() const override;

  /// Flushes and moves the body into place; returns its path relative to DIR.
  /// Throws std::runtime_error on a file system error.
  asio::awaitable<std::string> commit(const UrlParts& url);
  /// Removes the temporary file.
  asio::awaitable<void> discard();

 private:
  friend class BodyStore;
  struct Shared;
  explicit File(std::shared_ptr<Shared> shared);
  void start_write();
  asio::awaitable<void> drain();

  std::shared_ptr<Shared> shared_;
};

}  // namespace aetl
