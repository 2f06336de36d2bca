#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"
#include "net/ws/ws_url.h"

namespace aetl::ws {

/// How to reach a WebSocket server.
struct WsOptions {
  WsUrl url;
  /// Sent with the upgrade request (Authorization, Sec-WebSocket-Protocol, ...).
  std::vector<std::pair<std::string, std::string>> headers;
  /// wss: a PEM bundle trusted instead of the system's CAs (as curl's --cacert).
  std::string cacert;
  bool insecure = false;  ///< wss: no certificate or host name checks
  uint64_t max_message = 16u << 20;  ///< a longer message ends the connection (close 1009)
  /// Resolving, TCP, TLS and the upgrade together; also the closing handshake.
  std::chrono::milliseconds connect_timeout{10000};
  /// A ping after this long without any frame from the server; the connection
  /// counts as lost when the next interval passes without one either. 0: never.
  std::chrono::milliseconds ping_interval{20000};
};

/// Why a connection could not be made, or ended.
class WsError : public std::runtime_error {
 public:
  enum class Kind {
    connect,  ///< resolving, TCP, TLS or the upgrade failed, or took too long
    lost,     ///< dropped without a close frame (reset, end of stream, pings unanswered)
    closed,   ///< the server sent a close frame: `code`
    too_big,  ///< a message longer than max_message (the connection is closed with 1009)
  };
  WsError(Kind k, const std::string& message, int close_code = 0)
      : std::runtime_error(message), kind(k), code(close_code) {}
  Kind kind;
  int code;  ///< closed: the close code (1005 when the frame had none)
};

/// One message as received: a view into the connection's buffer, valid until the next read.
struct WsMessage {
  std::string_view data;
  bool binary = false;
};

/// A WebSocket client connection on the loop (Boost.Beast, plain or TLS; Beast
/// stays in ws_connection.cpp). Pings from the server are answered, keepalive
/// pings sent and silence timed, only while a read is pending: time spent not
/// reading (the consumer is behind) never counts as silence from the server.
/// One read and one send at a time.
class WsConnection {
 public:
  /// A connection to options.url, not made yet: connect() makes it. Throws
  /// WsError(connect) when `cacert` cannot be loaded.
  WsConnection(asio::any_io_executor ex, const WsOptions& options);
  ~WsConnection();

  /// Resolves, connects, verifies TLS (system CAs or `cacert`, the host name
  /// checked) and upgrades, all within connect_timeout (a name lookup still
  /// running then is left to finish on its own). Throws WsError(connect) with
  /// the cause ("Connection refused", "the server answered HTTP 404 Not Found").
  /// close() or abort() while it runs end it at once (the socket closed, the
  /// lookup left): WsError(connect, "stopped while connecting"). Call it once.
  asio::awaitable<void> connect();

  /// Sends one text message. Throws WsError(lost).
  asio::awaitable<void> send_text(std::string_view text);
  /// The next message. Throws WsError when the connection ends (a close frame,
  /// a drop, a message past max_message, or after close()/abort()).
  asio::awaitable<WsMessage> read();
  /// Starts the closing handshake (1000, "bye") in the background; a read in
  /// progress still gets the messages the server sent before its close frame,
  /// then WsError(closed). Bounded by connect_timeout. While connecting: as abort().
  void close();
  /// Closes the socket now; a read in progress ends with WsError(lost), a
  /// connect() in progress with WsError(connect).
  void abort();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with a closing handshake in the background
};

}  // namespace aetl::ws
