// The Boost.Beast WebSocket client: the only translation unit with Beast's headers.
#include "net/ws/ws_connection.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace aetl::ws {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

struct WsConnection::Impl {
  virtual ~Impl() = default;
  virtual asio::awaitable<void> connect() = 0;
  virtual asio::awaitable<void> send_text(std::string_view text) = 0;
  virtual asio::awaitable<WsMessage> read() = 0;
  virtual void close() = 0;
  virtual void abort() = 0;
};

namespace {

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

/// "1008 (policy violation): \"reason\"" for a close frame.
std::string close_text(int code, std::string_view reason) {
  const char* name = "";
  switch (code) {
    case 1000: name = " (normal)"; break;
    case 1001: name = " (going away)"; break;
    case 1002: name = " (protocol error)"; break;
    case 1003: name = " (unsupported data)"; break;
    case 1005: name = " (no status)"; break;
    case 1007: name = " (invalid payload)"; break;
    case 1008: name = " (policy violation)"; break;
    case 1009: name = " (message too big)"; break;
    case 1010: name = " (extension required)"; break;
    case 1011: name = " (internal error)"; break;
    case 1012: name = " (service restart)"; break;
    case 1013: name = " (try again later)"; break;
  }
  std::string s = std::to_string(code) + name;
  if (!reason.empty()) s += ": \"" + std::string(reason) + "\"";
  return s;
}

/// A name lookup on asio's resolver thread. getaddrinfo cannot be interrupted:
/// a caller that stops waiting (the deadline, a stop) leaves it to finish on its
/// own, holding only this. (The loop, and so the process's exit, still waits
/// for it.)
struct Lookup {
  Lookup(asio::any_io_executor ex, std::chrono::steady_clock::time_point deadline) : resolver(ex), wake(ex, deadline) {}
  tcp::resolver resolver;
  asio::steady_timer wake;  // cancelled when the lookup ends or the connect is stopped
  asio::error_code ec;
  tcp::resolver::results_type results;
  bool done = false;
};

template <class Next>
class Conn final : public WsConnection::Impl, public std::enable_shared_from_this<Conn<Next>> {
  static constexpr bool kTls = !std::is_same_v<Next, beast::tcp_stream>;

 public:
  Conn(asio::any_io_executor ex, const WsOptions& o, std::unique_ptr<ssl::context> ctx)
      : o_(o), ctx_(std::move(ctx)), ws_(make(ex, ctx_.get())) {}

  asio::awaitable<void> connect() override {
    auto self = this->shared_from_this();
    try {
      co_await connect_steps();
    } catch (...) {
      connecting_ = false;
      throw;
    }
    connecting_ = false;
  }

  asio::awaitable<void> send_text(std::string_view text) override {
    asio::error_code ec;
    co_await ws_.async_write(asio::buffer(text.data(), text.size()), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) throw WsError(WsError::Kind::lost, "sending: " + ec.message());
  }

  asio::awaitable<WsMessage> read() override {
    buffer_.consume(buffer_.size());
    asio::error_code ec;
    // Silence is timed only while a read is pending: with the idle timeout off,
    // Beast's timer, when it fires between reads, does nothing; each read starts it again.
    ws_.set_option(timeouts(o_.connect_timeout, true));
    co_await ws_.async_read(buffer_, asio::redirect_error(asio::use_awaitable, ec));
    ws_.set_option(timeouts(o_.connect_timeout, false));
    if (ec) throw error_for(ec);
    auto data = buffer_.cdata();
    co_return WsMessage{std::string_view(static_cast<const char*>(data.data()), data.size()), ws_.got_binary()};
  }

  void close() override {
    if (connecting_) return stop_connecting();
    if (closing_ || aborted_) return;
    closing_ = true;
    auto self = this->shared_from_this();
    asio::co_spawn(
        ws_.get_executor(),
        [self]() -> asio::awaitable<void> {
          asio::error_code ec;
          co_await self->ws_.async_close(websocket::close_reason(websocket::close_code::normal, "bye"),
                                         asio::redirect_error(asio::use_awaitable, ec));
        },
        asio::detached);
  }

  void abort() override {
    aborted_ = true;
    if (connecting_) return stop_connecting();
    beast::get_lowest_layer(ws_).close();
  }

 private:
  asio::awaitable<void> connect_steps() {
    auto& lowest = beast::get_lowest_layer(ws_);
    const auto deadline = std::chrono::steady_clock::now() + o_.connect_timeout;
    const std::string within = " within " + duration_text(o_.connect_timeout) + " (connect_timeout)";
    const char* phase = "resolve";
    asio::error_code ec;
    websocket::response_type res;
    try {
      stop_point();
      auto found = co_await resolve(deadline);
      phase = "connect";
      stop_point();
      lowest.expires_at(deadline);
      co_await lowest.async_connect(found, asio::use_awaitable);
      if constexpr (kTls) {
        phase = "tls";
        stop_point();
        SSL_set_tlsext_host_name(ws_.next_layer().native_handle(), o_.url.host.c_str());
        if (!o_.insecure) ws_.next_layer().set_verify_callback(ssl::host_name_verification(o_.url.host));
        co_await ws_.next_layer().async_handshake(ssl::stream_base::client, asio::use_awaitable);
      }
      phase = "upgrade";
      stop_point();
      lowest.expires_never();  // the WebSocket stream keeps its own time from here
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      ws_.set_option(timeouts(std::max(left, std::chrono::milliseconds(1)), false));
      ws_.read_message_max(o_.max_message);
      ws_.set_option(websocket::stream_base::decorator(
          [headers = o_.headers, auth = basic_auth(o_.url.userinfo)](websocket::request_type& req) {
            req.set(http::field::user_agent, "aetl/" AETL_VERSION);
            if (!auth.empty()) req.set(http::field::authorization, auth);
            for (const auto& [k, v] : headers) req.set(k, v);  // an Authorization here wins
          }));
      co_await ws_.async_handshake(res, o_.url.host_header, o_.url.target, asio::use_awaitable);
      stop_point();
      ws_.set_option(timeouts(o_.connect_timeout, false));  // the closing handshake's bound
      ws_.text(true);
      co_return;
    } catch (const asio::system_error& e) {
      ec = e.code();
    }
    stop_point();
    std::string phase_s = phase;
    std::string why;
    bool timed_out = ec == beast::error::timeout;
    if (phase_s == "resolve") {
      why = "cannot resolve " + o_.url.host + ": " + (timed_out ? "no answer" + within : ec.message());
    } else if (phase_s == "connect") {
      why = timed_out ? "no connection" + within : ec.message();
    } else if (phase_s == "tls") {
      long verify = X509_V_OK;
      if constexpr (kTls) verify = SSL_get_verify_result(ws_.next_layer().native_handle());
      if (timed_out) why = "no answer to the TLS handshake" + within;
      else if (verify != X509_V_OK) why = std::string("SSL certificate problem: ") + X509_verify_cert_error_string(verify);
      else why = "TLS handshake: " + ec.message();
    } else if (timed_out) {
      why = "no answer to the WebSocket handshake" + within;
    } else if (res.result_int() != 0 && res.result() != http::status::switching_protocols) {
      why = "the server answered the WebSocket handshake with HTTP " + std::to_string(res.result_int()) + " " +
            std::string(res.reason());
    } else {
      why = "WebSocket handshake: " + ec.message();
    }
    throw WsError(WsError::Kind::connect, why);
  }

  /// The addresses of the URL's host by `deadline` (else system_error(timeout)).
  asio::awaitable<tcp::resolver::results_type> resolve(std::chrono::steady_clock::time_point deadline) {
    auto lookup = std::make_shared<Lookup>(ws_.get_executor(), deadline);
    lookup->resolver.async_resolve(o_.url.host, o_.url.port,
                                   [lookup](const asio::error_code& ec, tcp::resolver::results_type results) {
                                     lookup->ec = ec;
                                     lookup->results = std::move(results);
                                     lookup->done = true;
                                     lookup->wake.cancel();
                                   });
    lookup_ = lookup;
    asio::error_code ec;
    co_await lookup->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    lookup_.reset();
    if (!lookup->done) {
      lookup->resolver.cancel();  // ends it if it has not started; otherwise it ends on its own
      stop_point();
      throw asio::system_error(beast::error::timeout);
    }
    if (lookup->ec) throw asio::system_error(lookup->ec);
    co_return std::move(lookup->results);
  }

  /// Throws the stop's WsError once close() or abort() came while connecting.
  void stop_point() const {
    if (stopped_) throw WsError(WsError::Kind::connect, "stopped while connecting");
  }

  void stop_connecting() {
    stopped_ = true;
    if (lookup_) lookup_->wake.cancel();
    beast::get_lowest_layer(ws_).close();
  }

  /// Beast's timeouts: `handshake` bounds the upgrade and the closing handshake;
  /// with `idle` (while a read is pending), a ping after ping_interval of
  /// silence and the connection lost after twice that.
  websocket::stream_base::timeout timeouts(std::chrono::milliseconds handshake, bool idle) const {
    websocket::stream_base::timeout t;
    t.handshake_timeout = handshake;
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    if (idle && o_.ping_interval.count() > 0) {
      t.idle_timeout = o_.ping_interval * 2;  // Beast pings at half of it
      t.keep_alive_pings = true;
    }
    return t;
  }

  static std::string basic_auth(const std::string& userinfo) {
    if (userinfo.empty()) return "";
    std::string out(4 * ((userinfo.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(userinfo.data()), static_cast<int>(userinfo.size()));
    out.resize(n);
    return "Basic " + out;
  }

  static websocket::stream<Next> make(asio::any_io_executor ex, ssl::context* ctx) {
    if constexpr (kTls) return websocket::stream<Next>(ex, *ctx);
    else return websocket::stream<Next>(ex);
  }

  WsError error_for(const asio::error_code& ec) {
    if (ec == websocket::error::closed) {
      int code = ws_.reason().code ? static_cast<int>(ws_.reason().code) : 1005;
      return WsError(WsError::Kind::closed,
                     "the server closed the connection with " + close_text(code, std::string_view(ws_.reason().reason.data(), ws_.reason().reason.size())),
                     code);
    }
    if (ec == websocket::error::message_too_big)
      return WsError(WsError::Kind::too_big, "a message longer than max_message (" + std::to_string(o_.max_message) +
                                                 " bytes); the connection was closed with 1009 (message too big)");
    if (ec == beast::error::timeout)
      return WsError(WsError::Kind::lost, "no frame from the server for " + duration_text(o_.ping_interval * 2) +
                                              ", a ping unanswered (ping_interval " + duration_text(o_.ping_interval) +
                                              ")");
    if (aborted_ || ec == asio::error::operation_aborted) return WsError(WsError::Kind::lost, "closed by this side");
    return WsError(WsError::Kind::lost, "the connection was lost: " + ec.message());
  }

  WsOptions o_;
  std::unique_ptr<ssl::context> ctx_;  // before ws_: the TLS stream refers to it
  websocket::stream<Next> ws_;
  beast::flat_buffer buffer_;
  std::shared_ptr<Lookup> lookup_;  // while resolving
  bool connecting_ = true;  // until connect() ends: close() and abort() stop it
  bool stopped_ = false;
  bool closing_ = false;
  bool aborted_ = false;
};

}  // namespace

WsConnection::WsConnection(asio::any_io_executor ex, const WsOptions& o) {
  if (!o.url.tls) {
    impl_ = std::make_shared<Conn<beast::tcp_stream>>(ex, o, nullptr);
    return;
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  if (o.insecure) {
    ctx->set_verify_mode(ssl::verify_none);
  } else {
    ctx->set_verify_mode(ssl::verify_peer);
    asio::error_code ec;
    if (o.cacert.empty()) ctx->set_default_verify_paths(ec);
    else ctx->load_verify_file(o.cacert, ec);
    if (ec) throw WsError(WsError::Kind::connect, "cacert " + o.cacert + ": " + ec.message());
  }
  impl_ = std::make_shared<Conn<beast::ssl_stream<beast::tcp_stream>>>(ex, o, std::move(ctx));
}

WsConnection::~WsConnection() {
  if (impl_) impl_->abort();
}

asio::awaitable<void> WsConnection::connect() { return impl_->connect(); }
asio::awaitable<void> WsConnection::send_text(std::string_view text) { return impl_->send_text(text); }
asio::awaitable<WsMessage> WsConnection::read() { return impl_->read(); }
void WsConnection::close() { impl_->close(); }
void WsConnection::abort() { impl_->abort(); }

}  // namespace aetl::ws
