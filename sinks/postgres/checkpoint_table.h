#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl {
namespace pg {
class PgConnection;
}

/// The postgres sink's exactly-once checkpoint: a pipeline's checkpoint kept in
/// a table beside the sink's (aetl_checkpoints, one row per pipeline), so that a
/// batch and the checkpoint after it commit in one transaction. Every write
/// stores a new token with the checkpoint and lands only where the stored token
/// is still the one this run read (or no row, if it read none) or last committed:
/// two runs of one pipeline cannot both move it on. The pipeline's transactions
/// take one advisory lock, so a COMMIT still on its way from a lost connection
/// (or a killed run) lands, or is rolled back, before anyone reads the
/// checkpoint. Loop thread; PgError from the server is passed on.
class PgCheckpointTable {
 public:
  /// `name`: the table, quoted (maybe schema-qualified); `pipeline`: the row's
  /// key, read at each statement (it outlives this).
  PgCheckpointTable(std::string name, const std::string& pipeline) : name_(std::move(name)), pipeline_(pipeline) {}
  const std::string& name() const { return name_; }

  /// Creates the table if it is missing. CREATE ... IF NOT EXISTS wants CREATE on
  /// the schema even when the table is there: it looks first, so a role with
  /// rights on the table alone is enough.
  asio::awaitable<void> ensure(pg::PgConnection& c);
  /// The pipeline's stored checkpoint, if any, read in a transaction of its own
  /// under the lock (a killed run's last COMMIT lands, or not, first); its token
  /// is the one the next write expects.
  asio::awaitable<std::optional<std::string>> read(pg::PgConnection& c);
  /// In an open transaction: takes the pipeline's lock until it ends.
  asio::awaitable<void> lock(pg::PgConnection& c);
  /// A token no other write (of this run or another) has used.
  std::string new_token();
  /// Sets the checkpoint with `token` where the stored token is the expected one
  /// (in the caller's transaction, if one is open). False: another run committed
  /// meanwhile (or took the row); nothing was written.
  asio::awaitable<bool> compare_and_set(pg::PgConnection& c, const std::string& checkpoint, const std::string& token);
  /// In a transaction holding the lock: whether the stored token is `token` (a
  /// write whose COMMIT was not known to have landed did land).
  asio::awaitable<bool> holds(pg::PgConnection& c, const std::string& token);
  /// The write of `token` committed: the next write expects it.
  void committed(std::string token) { stored_token_ = std::move(token); }

 private:
  std::string name_;
  std::string pipeline_;
  std::optional<std::string> stored_token_;  // the stored row's token, as read or last written
  uint64_t tokens_ = 0;
};

}  // namespace aetl
