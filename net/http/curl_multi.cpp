#include "net/http/curl_multi.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

namespace aetl {

struct CurlMulti::SocketWatch {
  SocketWatch(asio::io_context& io, curl_socket_t s) : fd(s), descriptor(io, s) {}
  curl_socket_t fd;
  asio::posix::stream_descriptor descriptor;
  int want = 0;  // CURL_POLL_IN / CURL_POLL_OUT / CURL_POLL_INOUT
  bool read_armed = false;
  bool write_armed = false;
  bool removed = false;
  bool managed = false;  // curl reports its close (close_socket_callback): kept across REMOVE
};

CurlMulti::CurlMulti(asio::io_context& io, long connection_cache)
    : io_(io), multi_(curl_multi_init()), timer_(io) {
  if (!multi_) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::socket_callback);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::timer_callback);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, connection_cache);
}

CurlMulti::~CurlMulti() {
  timer_.cancel();
  curl_multi_cleanup(multi_);  // may call socket_callback(REMOVE) for open sockets
  for (auto& [fd, w] : sockets_) {
    w->removed = true;
    asio::error_code ec;
    w->descriptor.cancel(ec);
    w->descriptor.release();
  }
}

void CurlMulti::configure(CURL* easy) {
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &CurlMulti::open_socket_callback);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &CurlMulti::close_socket_callback);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
}

curl_socket_t CurlMulti::open_socket_callback(void* clientp, curlsocktype purpose, struct curl_sockaddr* address) {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;  // http(s) only: no accepted sockets
  auto* self = static_cast<CurlMulti*>(clientp);
  curl_socket_t s = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (s == CURL_SOCKET_BAD) return s;
  try {  // no exception may cross libcurl's C frames
    self->managed_.insert(s);
  } catch (...) {
    ::close(s);
    return CURL_SOCKET_BAD;
  }
  return s;
}

int CurlMulti::close_socket_callback(void* clientp, curl_socket_t s) {
  auto* self = static_cast<CurlMulti*>(clientp);
  self->closing(s);
  return ::close(s);
}

void CurlMulti::closing(curl_socket_t s) {
  managed_.erase(s);
  auto it = sockets_.find(s);
  if (it == sockets_.end()) return;
  auto w = std::move(it->second);
  sockets_.erase(it);
  w->removed = true;
  asio::error_code ec;
  w->descriptor.cancel(ec);
  w->descriptor.release();  // deregisters; the caller closes the fd
}

void CurlMulti::add(CURL* easy, CurlTransferOwner* owner) {
  curl_easy_setopt(easy, CURLOPT_PRIVATE, owner);
  CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (failed_) {
    if (rc == CURLM_OK) curl_multi_remove_handle(multi_, easy);  // never left running without its owner
    rethrow_callback_failure();
  }
  if (rc != CURLM_OK) throw std::runtime_error(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
  ++running_;
}

void CurlMulti::remove(CURL* easy) {
  if (curl_multi_remove_handle(multi_, easy) == CURLM_OK) --running_;
}

int CurlMulti::socket_callback(CURL*, curl_socket_t s, int what, void* userp, void* socketp) {
  auto* self = static_cast<CurlMulti*>(userp);
  auto* existing = static_cast<SocketWatch*>(socketp);
  try {  // no exception may cross libcurl's C frames
    if (what == CURL_POLL_REMOVE)
      self->unwatch(s, existing);
    else
      self->watch(s, what, existing);
  } catch (...) {
    self->failed_ = std::current_exception();  // rethrown after curl returns
    return -1;  // curl fails the transfers on that socket
  }
  return 0;
}

int CurlMulti::timer_callback(CURLM*, long timeout_ms, void* userp) {
  auto* self = static_cast<CurlMulti*>(userp);
  try {  // no exception may cross libcurl's C frames
    return self->set_timer(timeout_ms);
  } catch (...) {
    self->failed_ = std::current_exception();  // rethrown after curl returns
    return -1;
  }
}

int CurlMulti::set_timer(long timeout_ms) {
  CurlMulti* self = this;
  if (timeout_ms < 0) {
    self->due_.reset();  // a pending wait may still fire; on_timer() ignores it
    return 0;
  }
  if (timeout_ms == 0) {
    self->due_.reset();
    if (!self->immediate_posted_) {
      self->immediate_posted_ = true;
      asio::post(self->io_, [self] {
        self->immediate_posted_ = false;
        self->socket_action(CURL_SOCKET_TIMEOUT, 0);
      });
    }
    return 0;
  }
  auto due = asio::steady_timer::clock_type::now() + std::chrono::milliseconds(timeout_ms);
  self->due_ = due;
  if (self->timer_armed_ && self->armed_at_ <= due) return 0;
  self->arm_timer(due);
  return 0;
}

void CurlMulti::arm_timer(asio::steady_timer::time_point due) {
  timer_armed_ = true;
  armed_at_ = due;
  timer_.expires_at(due);  // cancels an earlier-armed wait, which then returns aborted
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec) return;
    timer_armed_ = false;
    on_timer();
  });
}

void CurlMulti::on_timer() {
  if (!due_) return;  // curl no longer wants a timeout
  if (*due_ > asio::steady_timer::clock_type::now()) {
    arm_timer(*due_);  // woke early (armed for an older, earlier wish): wait for the rest
    return;
  }
  due_.reset();
  socket_action(CURL_SOCKET_TIMEOUT, 0);
}

void CurlMulti::watch(curl_socket_t s, int what, SocketWatch* existing) {
  std::shared_ptr<SocketWatch> w;
  if (existing) {
    auto it = sockets_.find(s);
    if (it == sockets_.end()) return;
    w = it->second;
  } else if (auto it = sockets_.find(s); it != sockets_.end() && it->second->managed) {
    // A kept-alive connection's socket, removed after its last transfer and still
    // registered with the loop: curl has not closed it (closing() would have erased it).
    w = it->second;
    curl_multi_assign(multi_, s, w.get());
  } else {
    // An fd number curl reuses after closing it without telling us would leave a
    // stale entry: drop it first (its release deregisters by fd number, so it must
    // come before the new registration).
    if (auto it = sockets_.find(s); it != sockets_.end()) {
      it->second->removed = true;
      asio::error_code ec;
      it->second->descriptor.cancel(ec);
      it->second->descriptor.release();
      sockets_.erase(it);
    }
    w = std::make_shared<SocketWatch>(io_, s);
    w->managed = managed_.count(s) != 0;
    sockets_.emplace(s, w);
    curl_multi_assign(multi_, s, w.get());
  }
  w->want = what;
  arm(w);
}

void CurlMulti::unwatch(curl_socket_t s, SocketWatch* existing) {
  if (!existing) return;
  auto it = sockets_.find(s);
  if (it == sockets_.end()) return;
  if (it->second->managed) {
    // Stays registered until curl closes it. A wait still pending completes later
    // and is ignored (on_ready checks `want`).
    it->second->want = 0;
    return;
  }
  auto w = it->second;
  sockets_.erase(it);
  w->removed = true;
  asio::error_code ec;
  w->descriptor.cancel(ec);
  w->descriptor.release();  // curl closes the fd itself
}

void CurlMulti::arm(const std::shared_ptr<SocketWatch>& w) {
  if ((w->want & CURL_POLL_IN) && !w->read_armed) {
    w->read_armed = true;
    w->descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                             [this, w](const asio::error_code& ec) {
                               w->read_armed = false;
                               if (ec || w->removed) return;
                               on_ready(w, CURL_CSELECT_IN);
                             });
  }
  if ((w->want & CURL_POLL_OUT) && !w->write_armed) {
    w->write_armed = true;
    w->descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                             [this, w](const asio::error_code& ec) {
                               w->write_armed = false;
                               if (ec || w->removed) return;
                               on_ready(w, CURL_CSELECT_OUT);
                             });
  }
}

void CurlMulti::on_ready(const std::shared_ptr<SocketWatch>& w, int direction) {
  int wanted = direction == CURL_CSELECT_IN ? CURL_POLL_IN : CURL_POLL_OUT;
  if (!(w->want & wanted)) return;  // curl changed its mind since the wait was armed
  socket_action(w->fd, direction);
  // `w` may have been removed inside socket_action; the shared_ptr keeps it valid.
  if (!w->removed) arm(w);
}

void CurlMulti::socket_action(curl_socket_t s, int ev_bitmask) {
  CURLMcode rc = curl_multi_socket_action(multi_, s, ev_bitmask, &still_running_);
  rethrow_callback_failure();
  if (rc != CURLM_OK) spdlog::error("curl_multi_socket_action: {}", curl_multi_strerror(rc));
  collect_finished();
}

void CurlMulti::rethrow_callback_failure() {
  if (auto e = std::exchange(failed_, nullptr)) std::rethrow_exception(e);
}

void CurlMulti::collect_finished() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    CURLcode result = msg->data.result;
    CurlTransferOwner* owner = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&owner));
    curl_multi_remove_handle(multi_, easy);
    --running_;
    if (owner) owner->transfer_done(result);
  }
}

}  // namespace aetl
