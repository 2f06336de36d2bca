#pragma once
#include "config/config_reader.h"
#include "config/field_spec.h"
#include "net/redis/redis_url.h"

namespace aetl {

/// The `url` field the redis source and the redis sink share.
inline constexpr FieldSpec kRedisUrlField{
    "url", FieldType::string, "redis://127.0.0.1:6379/0",
    "redis://[user:password@]host[:port][/db] or unix:/path[?db=N]; no password: REDISCLI_AUTH",
    "\"redis://queue.internal:6379/2\""};

/// Reads `url` (its default when absent); a malformed URL is a problem at its place
/// in the file, quoted without its password.
redis::RedisUrl read_redis_url(ConfigReader& r, ConfigProblems& problems);

}  // namespace aetl
