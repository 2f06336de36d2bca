#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "net/redis/redis_url.h"
#include "run/pipeline.h"

namespace aetl {

/// The `redis` sink's settings (its YAML fields; see sinks/redis.cpp).
struct RedisSinkConfig {
  redis::RedisUrl url;
  std::string stream;
  std::string field = "data";
  int64_t maxlen = 0;  ///< 0: no trimming
  std::chrono::milliseconds timeout{5000};
  bool exactly_once = false;  ///< see sinks/redis/stream_commit.h
  std::chrono::milliseconds remember_deliveries{std::chrono::hours(24)};  ///< held in the server's memory
};

/// The sink as a command builds it (afetch's --push and --to-stream).
SinkBuilder redis_sink(const RedisSinkConfig& cfg);

}  // namespace aetl
