#pragma once
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

class BlockingPool;

/// The embedded state store of `aetl run`: one SQLite file (WAL) holding the
/// checkpoint of each pipeline by name. Writes are synchronous=FULL: a checkpoint
/// that was reported written survives a crash of the machine, not just the process.
class StateStore {
 public:
  /// Opens or creates the store (and its directory). Throws std::runtime_error
  /// ("PATH: why") if it cannot.
  explicit StateStore(const std::string& path);
  ~StateStore();

  const std::string& path() const { return path_; }
  /// The saved checkpoint JSON for `pipeline`, if any (blocking; call at start-up).
  std::optional<std::string> load(const std::string& pipeline);
  /// Saves on the pool; throws on failure.
  asio::awaitable<void> save(BlockingPool& pool, const std::string& pipeline, std::string checkpoint_json);
  /// Forgets the checkpoint (--from-start), blocking.
  void clear(const std::string& pipeline);

 private:
  struct Db;
  std::string path_;
  std::unique_ptr<Db> db_;
};

/// The default state file for a pipeline file: $XDG_STATE_HOME/aetl (or
/// ~/.local/state/aetl) / NAME-HASH.sqlite, NAME the file's base name and HASH of
/// its absolute path, so two pipelines with the same name never share state.
std::string default_state_path(const std::string& pipeline_file);

}  // namespace aetl
