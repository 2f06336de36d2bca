#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"
#include "net/redis/redis_reply.h"
#include "net/redis/redis_url.h"

namespace aetl::redis {

/// A failure talking to Redis. Messages name the server (host:port/db), never
/// the password.
class RedisError : public std::runtime_error {
 public:
  enum class Kind {
    connection,  ///< unreachable, refused, cut off, no reply in time: reconnect and retry
    auth,        ///< AUTH (or SELECT) refused
    reply,       ///< the server answered a command with an error (WRONGTYPE, ...)
  };
  RedisError(std::string message, Kind kind) : std::runtime_error(std::move(message)), kind(kind) {}
  Kind kind;
};

/// One command: its arguments, sent as they are (binary-safe, no formatting).
using RedisCommand = std::vector<std::string_view>;

/// hiredis's async context driven by the event loop (hiredis 0.14 ships no Asio
/// adapter; this is ours). Its socket is watched with asio: hiredis asks for
/// reads and writes through its hooks, and a read wait is armed again after each
/// read for as long as reading is on (hiredis's hooks are level-triggered). The
/// cleanup hook releases the descriptor to hiredis, which closes it. hiredis
/// callbacks only store the reply and wake the waiting coroutine, which resumes
/// later from the loop, never inside hiredis.
///
/// Commands may be sent while others wait for their replies (they are answered
/// in order); a blocking command (XREADGROUP ... BLOCK) holds the connection, so
/// use another one meanwhile. 0.14 has no timeouts: each call has a deadline, and
/// a connection whose deadline passes is closed (every call waiting on it fails
/// with Kind::connection) and must be made again. No TLS (hiredis 0.14 has none).
class RedisConnection {
 public:
  /// Connects (a host name is looked up off the loop; each of its addresses is
  /// tried in turn), AUTHs if the URL (or REDISCLI_AUTH) has a password, SELECTs
  /// the database if it is not 0; all within `timeout`.
  static asio::awaitable<std::unique_ptr<RedisConnection>> connect(asio::any_io_executor ex, const RedisUrl& url,
                                                                   std::chrono::milliseconds timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Sends one command and returns its reply (an error reply is returned, not
  /// thrown). Throws RedisError(connection) if the connection is or gets broken
  /// or no reply comes within `timeout`.
  asio::awaitable<RedisReply> command(const RedisCommand& args, std::chrono::milliseconds timeout);
  /// The same, handing the reply in place to `take` first (on the loop, inside
  /// hiredis's callback, so nothing of it is copied): if `take` returns true it
  /// has used the reply and a nil one is returned; false, the reply is returned
  /// copied as by command(). Not called if the connection breaks first.
  using Take = std::function<bool(ReplyView)>;
  asio::awaitable<RedisReply> command(const RedisCommand& args, std::chrono::milliseconds timeout, Take take);
  /// Sends the commands at once (pipelined) and returns their replies in order.
  asio::awaitable<std::vector<RedisReply>> pipeline(const std::vector<RedisCommand>& commands,
                                                    std::chrono::milliseconds timeout);

  /// The connection was cut (or timed out): make a new one.
  bool broken() const;
  /// Closes the connection now; calls waiting on it fail with Kind::connection.
  void close();
  /// "127.0.0.1:6379/0", for messages.
  std::string where() const;

 private:
  struct Impl;
  explicit RedisConnection(std::shared_ptr<Impl> impl);
  /// connect() to one address (`ip`; ignored for a Unix socket).
  static asio::awaitable<std::unique_ptr<RedisConnection>> connect_to(asio::any_io_executor ex, const RedisUrl& url,
                                                                      const std::string& ip,
                                                                      std::chrono::steady_clock::time_point deadline);
  std::shared_ptr<Impl> impl_;
};

/// An error reply that passes with time (LOADING: a restarted server reading
/// its data; BUSY: a script running; TRYAGAIN, MASTERDOWN): retry, as after a
/// lost connection.
bool is_transient_error(const RedisReply& r);

/// Throws RedisError(reply) naming `what` when `r` is an error reply.
const RedisReply& expect_ok(const RedisReply& r, const std::string& what);

}  // namespace aetl::redis
