#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl::redis {

class RedisConnection;

/// What `aetl queue` shows of a stream: its length and ends, each consumer group
/// with its consumers, pending entries, lag and oldest pending entry, and the
/// length of a dead-letter stream.
struct StreamState {
  struct Pending {
    std::string id;
    std::string consumer;
    int64_t idle_ms = 0;
    int64_t deliveries = 0;
    int64_t age_ms = 0;  ///< now minus the time in its ID
  };
  struct Consumer {
    std::string name;
    int64_t pending = 0;
    int64_t idle_ms = 0;
  };
  struct Group {
    std::string name;
    int64_t pending = 0;
    std::optional<int64_t> lag;  ///< entries not yet delivered to the group (unknown after some deletions)
    std::string last_delivered_id;
    std::optional<Pending> oldest_pending;
    std::vector<Consumer> consumers;
  };
  std::string stream;
  int64_t length = 0;
  std::string first_id, last_id;  ///< empty when the stream is empty
  std::vector<Group> groups;
  std::string dead_letter;        ///< its key; empty: none asked for
  std::optional<int64_t> dead_letter_length;  ///< nullopt: the key does not exist
};

/// Reads the state of `stream` (and of `dead_letter`, if not empty). Throws
/// RedisError: of kind `reply` with "no stream 'KEY'" when the key is missing or
/// "key 'KEY' holds a TYPE, not a stream".
asio::awaitable<StreamState> read_stream_state(RedisConnection& c, const std::string& stream,
                                               const std::string& dead_letter, std::chrono::milliseconds timeout);

}  // namespace aetl::redis
