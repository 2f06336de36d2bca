#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace aetl::redis {

/// A reply, copied out of hiredis's (which is freed once its callback returns).
struct RedisReply {
  enum class Type { nil, string, status, error, integer, array };
  Type type = Type::nil;
  std::string str;     ///< string, status, error
  long long integer = 0;
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
  /// An error reply's code ("WRONGTYPE", "NOGROUP", "BUSYGROUP", ...).
  std::string_view error_code() const {
    if (type != Type::error) return {};
    std::string_view s(str);
    return s.substr(0, s.find(' '));
  }
};

}  // namespace aetl::redis
