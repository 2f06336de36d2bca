#pragma once
#include <cstddef>
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

/// A reply as hiredis holds it, read in place (no copy): valid only inside the
/// call it is handed to (RedisConnection::command's `take`).
class ReplyView {
 public:
  explicit ReplyView(const void* reply) : r_(reply) {}
  RedisReply::Type type() const;
  /// string, status, error: the bytes; otherwise empty.
  std::string_view str() const;
  long long integer() const;
  /// array: its elements; otherwise 0.
  size_t size() const;
  ReplyView operator[](size_t i) const;
  /// A copy, for replies kept past the call.
  RedisReply copy() const;

 private:
  const void* r_;  // a redisReply
};

}  // namespace aetl::redis
