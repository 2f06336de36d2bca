#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/record.h"
#include "net/redis/redis_connection.h"

namespace aetl {

/// The redis sink's exactly-once commits. A batch's XADDs and what makes them
/// exactly once run in one Lua script: atomic on the server as a MULTI/EXEC
/// would be, and able to decide as it goes. The scripts carry the #!lua
/// shebang, so Redis refuses them whole when it is out of memory rather than
/// stopping one half-way.
///  - With a checkpoint (a replayable source): the pipeline's checkpoint lives in
///    the hash aetl:checkpoint:PIPELINE {checkpoint, token}. The script adds the
///    entries and sets the checkpoint only where the stored token is the one this
///    run read or last wrote; another token means another run of the pipeline
///    committed meanwhile (taken over). Every attempt at a batch carries the same
///    token: a retry after lost replies that finds it stored knows the batch
///    landed, and nothing is added again.
///  - With delivery IDs (a queue source): the sorted set aetl:deliveries:PIPELINE
///    holds the IDs added (scored by the time, for remember_deliveries); a record
///    whose ID is there is not added again.
class StreamCommit {
 public:
  StreamCommit(std::string stream, std::string field, std::string maxlen, const std::string& pipeline);

  /// The stored checkpoint (and its token, which the next commit expects).
  asio::awaitable<std::optional<std::string>> read_checkpoint(redis::RedisConnection& c,
                                                              std::chrono::milliseconds timeout);

  enum class Outcome { committed, landed_before, taken_over };
  /// Adds `batch` and sets `checkpoint`, as described above.
  asio::awaitable<Outcome> commit(redis::RedisConnection& c, const Batch& batch, const std::string& checkpoint,
                                  std::chrono::milliseconds timeout);

  /// Adds the records of `batch` whose ID (`ids`, one per record; empty: always
  /// added, none kept) is not kept yet. Returns the indices of those it left
  /// out. IDs kept longer than `remember` are dropped, up to 1000 a call.
  asio::awaitable<std::vector<size_t>> add_new(redis::RedisConnection& c, const Batch& batch,
                                               const std::vector<std::string>& ids, std::chrono::seconds remember,
                                               std::chrono::milliseconds timeout);

 private:
  std::string stream_, field_, maxlen_;
  std::string checkpoint_key_, deliveries_key_;
  std::optional<std::string> expected_;  // the stored token as read or last written (none: no checkpoint yet)
  std::string attempt_;                  // the token of the batch being committed (kept across its attempts)
  uint64_t tokens_ = 0;
};

}  // namespace aetl
