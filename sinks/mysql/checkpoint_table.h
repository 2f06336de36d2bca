#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl {
namespace mysql {
class MysqlConnection;
}

/// The mysql sink's exactly-once checkpoint: a pipeline's checkpoint kept in an
/// InnoDB table beside the sink's (aetl_checkpoints, one row per pipeline), so
/// that a batch and the checkpoint after it commit in one transaction. Every
/// write stores a new token with the checkpoint and lands only where the stored
/// token is still the one this run read (or no row, if it read none) or last
/// committed: two runs of one pipeline cannot both move it on. A batch's
/// transaction locks the pipeline's row first (SELECT ... FOR UPDATE), so a
/// COMMIT still on its way from a lost connection (or a killed run) lands, or is
/// rolled back, before anyone reads the checkpoint. Loop thread; MysqlError from
/// the server is passed on.
class MysqlCheckpointTable {
 public:
  /// `name`: the table, quoted (maybe database-qualified); `pipeline`: the row's
  /// key, read at each statement (it outlives this).
  MysqlCheckpointTable(std::string name, const std::string& pipeline) : name_(std::move(name)), pipeline_(pipeline) {}
  const std::string& name() const { return name_; }

  asio::awaitable<void> ensure(mysql::MysqlConnection& c);
  /// The pipeline's stored checkpoint, if any, read under the row's lock in a
  /// transaction of its own; its token is the one the next write expects.
  asio::awaitable<std::optional<std::string>> read(mysql::MysqlConnection& c);
  /// In an open transaction: locks the pipeline's row until it ends.
  asio::awaitable<void> lock(mysql::MysqlConnection& c);
  /// A token no other write (of this run or another) has used.
  std::string new_token();
  /// Sets the checkpoint with `token` where the stored token is the expected one
  /// (in the caller's transaction). False: another run committed meanwhile.
  asio::awaitable<bool> compare_and_set(mysql::MysqlConnection& c, const std::string& checkpoint,
                                        const std::string& token);
  /// In a transaction holding the lock: whether the stored token is `token`.
  asio::awaitable<bool> holds(mysql::MysqlConnection& c, const std::string& token);
  /// The write of `token` committed: the next write expects it.
  void committed(std::string token) { stored_token_ = std::move(token); }

 private:
  std::string where_pipeline() const;
  std::string name_;
  std::string pipeline_;
  std::optional<std::string> stored_token_;
  uint64_t tokens_ = 0;
};

}  // namespace aetl
