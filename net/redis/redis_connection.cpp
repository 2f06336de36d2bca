#include "net/redis/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <new>

namespace aetl::redis {
namespace {

RedisReply copy_reply(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::string; break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::status; break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::error; break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::integer; break;
    case REDIS_REPLY_ARRAY: out.type = RedisReply::Type::array; break;
    default: out.type = RedisReply::Type::nil; break;
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
    out.str.assign(r->str, r->len);
  if (r->type == REDIS_REPLY_INTEGER) out.integer = r->integer;
  if (r->type == REDIS_REPLY_ARRAY) {
    out.elements.reserve(r->elements);
    for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
  }
  return out;
}

/// What a call waits for: its replies, or the connection's end. hiredis's callbacks
/// fill it and cancel the timer; the coroutine resumes from the loop.
struct Pending {
  explicit Pending(asio::any_io_executor ex, size_t expected) : timer(ex), expected(expected) {}
  asio::steady_timer timer;
  size_t expected;
  RedisConnection::Take take;  // if set: sees each reply in place first
  std::vector<RedisReply> replies;
  bool failed = false;
  bool done() const { return failed || replies.size() == expected; }
};

void on_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* holder = static_cast<std::shared_ptr<Pending>*>(privdata);
  Pending& p = **holder;
  if (!reply) p.failed = true;  // the connection ended (or was closed) first
  else if (!p.failed && p.take && p.take(ReplyView(reply))) p.replies.emplace_back();
  else if (!p.failed) p.replies.push_back(copy_reply(static_cast<redisReply*>(reply)));
  if (p.done()) p.timer.cancel();
  delete holder;
}

}  // namespace

struct RedisConnection::Impl : std::enable_shared_from_this<Impl> {
  explicit Impl(asio::any_io_executor ex, RedisUrl url) : ex(ex), fd(ex), url(std::move(url)) {}
  asio::any_io_executor ex;
  asio::posix::stream_descriptor fd;
  RedisUrl url;
  redisAsyncContext* ac = nullptr;  // null once hiredis freed it (or we did)
  bool reading = false, writing = false;
  bool read_armed = false, write_armed = false;
  bool broken = false;
  std::string why;                  // why it broke
  std::shared_ptr<Pending> connecting;

  // --- the event hooks hiredis calls (privdata = this)
  static Impl& of(void* privdata) { return *static_cast<Impl*>(privdata); }
  static void add_read(void* p) {
    Impl& s = of(p);
    s.reading = true;
    s.arm_read();
  }
  static void del_read(void* p) { of(p).reading = false; }
  static void add_write(void* p) {
    Impl& s = of(p);
    s.writing = true;
    s.arm_write();
  }
  static void del_write(void* p) { of(p).writing = false; }
  static void cleanup(void* p) {
    // hiredis is freeing the context and closes the socket itself: give it back,
    // do not close it (pending waits end with operation_aborted).
    Impl& s = of(p);
    s.reading = s.writing = false;
    if (s.fd.is_open()) s.fd.release();
    s.ac = nullptr;
  }
  static void on_connect(const redisAsyncContext* c, int status) {
    Impl& s = *static_cast<Impl*>(c->data);
    if (status != REDIS_OK) {
      s.broken = true;
      s.why = c->errstr[0] ? c->errstr : "cannot connect";
      s.ac = nullptr;  // hiredis frees a context that failed to connect
    }
    if (s.connecting) {
      if (status != REDIS_OK) s.connecting->failed = true;
      else s.connecting->replies.emplace_back();
      s.connecting->timer.cancel();
    }
  }
  static void on_disconnect(const redisAsyncContext* c, int status) {
    Impl& s = *static_cast<Impl*>(c->data);
    if (!s.broken) {
      s.broken = true;
      s.why = status == REDIS_OK ? "connection closed" : (c->errstr[0] ? c->errstr : "connection lost");
    }
    s.ac = nullptr;  // hiredis frees it after this callback
  }

  void arm_read() {
    if (read_armed || !reading || !ac || !fd.is_open()) return;
    read_armed = true;
    fd.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](const asio::error_code& ec) {
      self->read_armed = false;
      if (ec || !self->ac) return;
      redisAsyncHandleRead(self->ac);  // may call callbacks, may free the context
      self->arm_read();                // level-triggered: again while reading is on
    });
  }
  void arm_write() {
    if (write_armed || !writing || !ac || !fd.is_open()) return;
    write_armed = true;
    fd.async_wait(asio::posix::stream_descriptor::wait_write, [self = shared_from_this()](const asio::error_code& ec) {
      self->write_armed = false;
      if (ec || !self->ac) return;
      redisAsyncHandleWrite(self->ac);  // sends what is queued (or completes the connect)
      self->arm_write();
    });
  }

  /// Closes from our side (not from inside a hiredis callback): every call
  /// waiting on the connection gets its callback with no reply.
  void close(const std::string& reason) {
    if (!broken) {
      broken = true;
      why = reason;
    }
    if (ac) {
      redisAsyncContext* c = ac;
      redisAsyncFree(c);  // calls cleanup (ac = nullptr) and every pending callback
      ac = nullptr;
    }
  }

  RedisError lost() const { return RedisError("redis " + url.where() + ": " + why, RedisError::Kind::connection); }

  asio::awaitable<std::vector<RedisReply>> send(const std::vector<RedisCommand>& commands,
                                               std::chrono::milliseconds timeout, RedisConnection::Take take = {}) {
    auto self = shared_from_this();  // alive across the wait, whoever owns it meanwhile
    if (broken || !ac) throw lost();
    auto pending = std::make_shared<Pending>(ex, commands.size());
    pending->take = std::move(take);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& cmd : commands) {
      argv.clear();
      lens.clear();
      for (std::string_view a : cmd) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      auto* holder = new std::shared_ptr<Pending>(pending);
      if (redisAsyncCommandArgv(ac, on_reply, holder, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
          REDIS_OK) {
        delete holder;
        // Out of memory formatting it, or the context is closing: no later command
        // may overtake the ones already queued, so the connection goes.
        close(ac && ac->errstr[0] ? ac->errstr : "cannot queue a command");
        throw lost();
      }
    }
    co_await wait(*pending, std::chrono::steady_clock::now() + timeout);
    if (pending->failed) throw lost();
    co_return std::move(pending->replies);
  }

  asio::awaitable<void> wait(Pending& p, std::chrono::steady_clock::time_point deadline) {
    while (!p.done()) {
      p.timer.expires_at(deadline);
      asio::error_code ec;
      co_await p.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!p.done() && std::chrono::steady_clock::now() >= deadline) {
        close("no reply in time");
        p.failed = true;
      }
    }
  }
};

RedisConnection::RedisConnection(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisConnection::~RedisConnection() {
  if (impl_) impl_->close("closed");
}

bool RedisConnection::broken() const { return impl_->broken || !impl_->ac; }
void RedisConnection::close() { impl_->close("closed"); }
std::string RedisConnection::where() const { return impl_->url.where(); }

asio::awaitable<RedisReply> RedisConnection::command(const RedisCommand& args, std::chrono::milliseconds timeout) {
  std::vector<RedisCommand> one{args};
  auto replies = co_await impl_->send(one, timeout);
  co_return std::move(replies.front());
}

asio::awaitable<RedisReply> RedisConnection::command(const RedisCommand& args, std::chrono::milliseconds timeout,
                                                     Take take) {
  std::vector<RedisCommand> one{args};
  auto replies = co_await impl_->send(one, timeout, std::move(take));
  co_return std::move(replies.front());
}

asio::awaitable<std::vector<RedisReply>> RedisConnection::pipeline(const std::vector<RedisCommand>& commands,
                                                                  std::chrono::milliseconds timeout) {
  if (commands.empty()) co_return std::vector<RedisReply>{};
  co_return co_await impl_->send(commands, timeout);
}

static const redisReply& raw(const void* r) { return *static_cast<const redisReply*>(r); }

RedisReply::Type ReplyView::type() const {
  switch (raw(r_).type) {
    case REDIS_REPLY_STRING: return RedisReply::Type::string;
    case REDIS_REPLY_STATUS: return RedisReply::Type::status;
    case REDIS_REPLY_ERROR: return RedisReply::Type::error;
    case REDIS_REPLY_INTEGER: return RedisReply::Type::integer;
    case REDIS_REPLY_ARRAY: return RedisReply::Type::array;
    default: return RedisReply::Type::nil;
  }
}
std::string_view ReplyView::str() const {
  const redisReply& r = raw(r_);
  if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR)
    return {r.str, r.len};
  return {};
}
long long ReplyView::integer() const { return raw(r_).type == REDIS_REPLY_INTEGER ? raw(r_).integer : 0; }
size_t ReplyView::size() const { return raw(r_).type == REDIS_REPLY_ARRAY ? raw(r_).elements : 0; }
ReplyView ReplyView::operator[](size_t i) const { return ReplyView(raw(r_).element[i]); }
RedisReply ReplyView::copy() const { return copy_reply(&raw(r_)); }

bool is_transient_error(const RedisReply& r) {
  std::string_view code = r.error_code();
  return code == "LOADING" || code == "BUSY" || code == "TRYAGAIN" || code == "MASTERDOWN";
}

const RedisReply& expect_ok(const RedisReply& r, const std::string& what) {
  if (r.is_error()) throw RedisError(what + ": " + r.str, RedisError::Kind::reply);
  return r;
}

namespace {

/// The addresses of the URL's host, within `deadline`. The lookup runs on
/// asio's resolver thread and getaddrinfo cannot be stopped, so it is left to
/// finish on its own (holding its state) while this returns at the deadline.
/// (The process's exit still waits for it: asio joins that thread; and a later
/// lookup queues behind it.)
asio::awaitable<std::vector<std::string>> addresses_of(asio::any_io_executor ex, const RedisUrl& url,
                                                       std::chrono::steady_clock::time_point deadline) {
  struct Lookup {
    explicit Lookup(asio::any_io_executor ex, std::chrono::steady_clock::time_point deadline)
        : resolver(ex), wake(ex, deadline) {}
    asio::ip::tcp::resolver resolver;
    asio::steady_timer wake;  // cancelled when the lookup ends
    asio::error_code ec;
    std::vector<std::string> ips;
    bool done = false;
  };
  auto fail = [&](const std::string& why) { return RedisError("redis " + url.where() + ": " + why, RedisError::Kind::connection); };
  auto lookup = std::make_shared<Lookup>(ex, deadline);
  lookup->resolver.async_resolve(url.host, std::to_string(url.port),
                                 [lookup](const asio::error_code& ec, asio::ip::tcp::resolver::results_type results) {
                                   lookup->ec = ec;
                                   for (const auto& r : results) {
                                     std::string ip = r.endpoint().address().to_string();
                                     if (std::find(lookup->ips.begin(), lookup->ips.end(), ip) == lookup->ips.end())
                                       lookup->ips.push_back(ip);
                                   }
                                   lookup->done = true;
                                   lookup->wake.cancel();
                                 });
  asio::error_code ec;
  if (!lookup->done) co_await lookup->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!lookup->done) {
    lookup->resolver.cancel();  // ends it if it has not started; otherwise it ends on its own
    throw fail("cannot resolve '" + url.host + "': no answer in time");
  }
  if (lookup->ec || lookup->ips.empty())
    throw fail("cannot resolve '" + url.host + "': " + (lookup->ec ? lookup->ec.message() : "no address"));
  co_return std::move(lookup->ips);
}

}  // namespace

asio::awaitable<std::unique_ptr<RedisConnection>> RedisConnection::connect(asio::any_io_executor ex,
                                                                          const RedisUrl& url,
                                                                          std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!url.socket_path.empty()) co_return co_await connect_to(ex, url, "", deadline);
  // Each address in turn (a name may have an IPv6 address the server does not
  // listen on, and an IPv4 one it does), all within the one deadline.
  std::vector<std::string> ips = co_await addresses_of(ex, url, deadline);
  std::exception_ptr last;
  for (const auto& ip : ips) {
    try {
      co_return co_await connect_to(ex, url, ip, deadline);
    } catch (const RedisError& e) {
      if (e.kind != RedisError::Kind::connection || std::chrono::steady_clock::now() >= deadline) throw;
      last = std::current_exception();
    }
  }
  std::rethrow_exception(last);
}

asio::awaitable<std::unique_ptr<RedisConnection>> RedisConnection::connect_to(
    asio::any_io_executor ex, const RedisUrl& url, const std::string& ip, std::chrono::steady_clock::time_point deadline) {
  auto impl = std::make_shared<Impl>(ex, url);
  auto fail = [&](const std::string& why) { return RedisError("redis " + url.where() + ": " + why, RedisError::Kind::connection); };

  redisAsyncContext* ac = nullptr;
  if (!url.socket_path.empty()) ac = redisAsyncConnectUnix(url.socket_path.c_str());
  else ac = redisAsyncConnect(ip.c_str(), url.port);
  if (!ac) throw std::bad_alloc();
  if (ac->err) {
    std::string why = ac->errstr;
    redisAsyncFree(ac);
    throw fail(why);
  }
  impl->ac = ac;
  ac->data = impl.get();
  impl->fd.assign(ac->c.fd);
  ac->ev.data = impl.get();
  ac->ev.addRead = Impl::add_read;
  ac->ev.delRead = Impl::del_read;
  ac->ev.addWrite = Impl::add_write;
  ac->ev.delWrite = Impl::del_write;
  ac->ev.cleanup = Impl::cleanup;
  redisAsyncSetDisconnectCallback(ac, Impl::on_disconnect);
  impl->connecting = std::make_shared<Pending>(ex, 1);
  auto connecting = impl->connecting;
  redisAsyncSetConnectCallback(ac, Impl::on_connect);  // arms the first write wait
  std::unique_ptr<RedisConnection> conn(new RedisConnection(impl));
  co_await impl->wait(*connecting, deadline);
  impl->connecting.reset();
  if (connecting->failed) throw fail(impl->why.empty() ? "cannot connect" : impl->why);

  auto left = [&] {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max(d, std::chrono::milliseconds(1));
  };
  if (!url.password.empty()) {
    RedisCommand auth{std::string_view("AUTH")};
    if (!url.user.empty()) auth.push_back(url.user);
    auth.push_back(url.password);
    RedisReply r = co_await conn->command(auth, left());
    if (r.is_error() && is_transient_error(r)) throw fail(r.str);
    if (r.is_error()) throw RedisError("redis " + url.where() + ": AUTH refused: " + r.str, RedisError::Kind::auth);
  }
  if (url.db != 0) {
    std::string db = std::to_string(url.db);
    RedisCommand select{std::string_view("SELECT"), std::string_view(db)};
    RedisReply r = co_await conn->command(select, left());
    if (r.is_error() && is_transient_error(r)) throw fail(r.str);
    if (r.is_error()) throw RedisError("redis " + url.where() + ": SELECT refused: " + r.str, RedisError::Kind::auth);
  }
  // A server that needs a password answers the first command with NOAUTH.
  RedisCommand ping{std::string_view("PING")};
  RedisReply pong = co_await conn->command(ping, left());
  if (pong.is_error() && is_transient_error(pong)) throw fail(pong.str);  // a restarted server loading its data
  if (pong.is_error()) {
    bool auth = pong.error_code() == "NOAUTH";
    throw RedisError("redis " + url.where() + ": " + (auth ? "the server needs a password (in the URL or REDISCLI_AUTH): " : "") + pong.str,
                     auth ? RedisError::Kind::auth : RedisError::Kind::reply);
  }
  co_return conn;
}

}  // namespace aetl::redis
