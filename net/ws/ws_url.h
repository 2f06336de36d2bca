#pragma once
#include <string>
#include <string_view>

namespace aetl::ws {

/// A ws:// or wss:// URL taken apart for connecting.
struct WsUrl {
  bool tls = false;    ///< wss://
  std::string host;    ///< a name or an address (IPv6 without its brackets)
  std::string port;    ///< as given, or "80" / "443"
  std::string target;  ///< the path and query sent in the upgrade request ("/" at least)
  std::string host_header;  ///< "host" or "host:port" (a port that is not the scheme's)
  /// "user:password" from a user:password@ (percent-decoded; ":" added after a
  /// user alone), sent as HTTP Basic auth with the upgrade request. Empty: none.
  std::string userinfo;
  /// For messages, logs and checkpoints: scheme://host[:port]/path, with a password
  /// masked (user:***@) and without the query (it often carries a token).
  std::string shown;
};

/// Takes `text` apart. Throws std::invalid_argument with the reason ("not a ws://
/// or wss:// URL", "no host") on anything else.
WsUrl parse_ws_url(std::string_view text);

}  // namespace aetl::ws
