#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace aetl::redis {

/// Where a Redis server is and how to log in to it:
///   redis://[[user]:password@]host[:port][/db]    (port 6379, db 0 by default)
///   unix:/path/to/redis.sock[?db=N]                (also unix:///path)
/// With no password in the URL, REDISCLI_AUTH (as redis-cli reads it) is used.
/// The password is never part of where() or of any message.
struct RedisUrl {
  std::string host;         ///< empty for a unix socket
  uint16_t port = 6379;
  std::string socket_path;  ///< set for a unix socket
  int db = 0;
  std::string user;         ///< empty: AUTH with the password alone
  std::string password;     ///< empty: no AUTH

  /// "127.0.0.1:6379/0" or "unix:/run/redis.sock/0", for messages.
  std::string where() const;
};

/// Parses `url`; throws std::invalid_argument with a message that quotes the URL
/// without its password ("redis URL 'redis://h:x/0': port must be a number ...").
RedisUrl parse_redis_url(std::string_view url);

/// The URL with its password replaced by "***", for messages.
std::string redact_redis_url(std::string_view url);

}  // namespace aetl::redis
