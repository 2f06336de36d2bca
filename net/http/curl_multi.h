#pragma once
#include <curl/curl.h>

#include <exception>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"

namespace aetl {

/// Told when a transfer added to CurlMulti has finished.
class CurlTransferOwner {
 public:
  virtual ~CurlTransferOwner() = default;
  /// Called on the loop after the easy handle was removed from the multi handle.
  virtual void transfer_done(CURLcode result) = 0;
};

/// The bridge between libcurl's multi interface and the event loop: one per process.
///
/// Socket-driven (curl_multi_socket_action): curl's socket callback arms waits on
/// the loop, its timer callback arms one steady timer. Lifetime rules:
///  - per-socket state (SocketWatch) is shared-owned by the map and by each pending
///    wait; CURL_POLL_REMOVE (which curl may issue inside any socket_action call)
///    marks it removed and releases the descriptor without closing it (curl owns the
///    fd), so a wait completing afterwards sees `removed` and touches nothing else;
///  - after curl_multi_socket_action returns, nothing obtained before it is used
///    except through such a shared_ptr;
///  - callbacks never call back into curl_multi_socket_action directly: the timer
///    callback only arms the timer, whose handler runs from the loop;
///  - sockets curl opens and closes through the callbacks that configure() installs
///    ("managed" sockets: curl tells us when such a descriptor is closed) stay
///    registered with the loop from their first watch until curl closes them, across
///    CURL_POLL_REMOVE: curl removes a kept-alive connection's socket after every
///    transfer and adds it again for the next, and registering it anew each time
///    cost an epoll_ctl ADD, an ioctl and an epoll_ctl DEL per request. Other
///    sockets (a resolver's socketpair, which curl closes without telling) are
///    released at CURL_POLL_REMOVE as before.
class CurlMulti {
 public:
  /// `connection_cache`: idle connections kept open for reuse. libcurl's default
  /// (4 x the handles added at that moment) shrinks whenever transfers finish,
  /// closing connections that the next requests would have reused.
  CurlMulti(asio::io_context& io, long connection_cache);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  /// Installs this multi's open/close socket callbacks on `easy` (once per handle,
  /// before its first add()): the sockets of its connections become managed.
  void configure(CURL* easy);

  /// Starts `easy`; owner->transfer_done() is called on completion. CURLOPT_PRIVATE
  /// is used by this class and must not be set by callers.
  void add(CURL* easy, CurlTransferOwner* owner);
  /// Cancels a running transfer; transfer_done() is not called.
  void remove(CURL* easy);

  CURLM* handle() { return multi_; }
  size_t running() const { return running_; }

 private:
  struct SocketWatch;

  static int socket_callback(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
  static int timer_callback(CURLM* multi, long timeout_ms, void* userp);
  static curl_socket_t open_socket_callback(void* clientp, curlsocktype purpose, struct curl_sockaddr* address);
  static int close_socket_callback(void* clientp, curl_socket_t s);
  void closing(curl_socket_t s);
  int set_timer(long timeout_ms);
  /// An exception a callback caught (it may not cross curl's C frames), thrown
  /// again once curl has returned.
  void rethrow_callback_failure();

  void watch(curl_socket_t s, int what, SocketWatch* existing);
  void unwatch(curl_socket_t s, SocketWatch* existing);
  void arm(const std::shared_ptr<SocketWatch>& w);
  void on_ready(const std::shared_ptr<SocketWatch>& w, int direction);
  void socket_action(curl_socket_t s, int ev_bitmask);
  void collect_finished();

  asio::io_context& io_;
  CURLM* multi_;
  std::exception_ptr failed_;
  void on_timer();
  void arm_timer(asio::steady_timer::time_point due);

  // curl asks for a new timeout after almost every event. Re-arming the Asio timer
  // each time costs a timerfd_settime syscall, so one wait stays armed and is only
  // moved earlier; waking up early is harmless (curl answers with the time left).
  asio::steady_timer timer_;
  bool timer_armed_ = false;                              // a wait is pending
  asio::steady_timer::time_point armed_at_{};             // when that wait fires
  std::optional<asio::steady_timer::time_point> due_;     // what curl currently wants
  bool immediate_posted_ = false;                         // a zero timeout is queued
  std::unordered_map<curl_socket_t, std::shared_ptr<SocketWatch>> sockets_;
  std::unordered_set<curl_socket_t> managed_;  // opened by open_socket_callback, not yet closed
  size_t running_ = 0;
  int still_running_ = 0;
};

}  // namespace aetl
