#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/retry.h"
#include "net/redis/redis_url.h"
#include "run/pipeline.h"

namespace aetl {

/// The `redis` source's settings (its YAML fields; see sources/redis.cpp).
struct RedisSourceConfig {
  redis::RedisUrl url;
  std::string stream;
  std::string group;
  std::string consumer;  ///< empty: host-pid
  std::string start = "0";
  std::string field = "data";
  size_t count = 100;
  std::chrono::milliseconds block{1000};
  std::chrono::milliseconds claim_idle{60000};
  int64_t max_deliveries = 5;
  std::chrono::milliseconds stop_when_idle{0};  ///< 0: run until stopped
  std::chrono::milliseconds timeout{5000};
  /// Commands after a lost connection: tries again this often, the waits doubling
  /// from min_backoff to max_backoff (no jitter), then the run stops.
  RetryPolicy retry{10, std::chrono::milliseconds(200), std::chrono::milliseconds(5000)};
};

/// The source as a command builds it (afetch's worker mode). The pipeline part
/// that holds it must be declared a queue (Pipeline::SourcePart::queue).
SourceBuilder redis_source(std::shared_ptr<const RedisSourceConfig> cfg);

}  // namespace aetl
