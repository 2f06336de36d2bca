// The slots and the run lock of a schedule shared by many hosts, in Redis.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "net/redis/redis_connection.h"
#include "run/pipeline_sink.h"
#include "run/schedule/slot_book.h"

namespace aetl {
namespace {

using namespace std::chrono;
using redis::RedisCommand;
using redis::RedisConnection;
using redis::RedisError;
using redis::RedisReply;

// Claims a slot once: the first SET NX wins, and moves `last` on.
constexpr const char* kClaim =
    "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then "
    "  local last = tonumber(redis.call('get', KEYS[2])) "
    "  if not last or tonumber(ARGV[3]) > last then redis.call('set', KEYS[2], ARGV[3]) end "
    "  return {1, ARGV[1]} "
    "end "
    "return {0, redis.call('get', KEYS[1])}";
// The lock's holder alone renews, checks and releases it (by its token).
constexpr const char* kRenew =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
constexpr const char* kCheck =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pttl', KEYS[1]) end return -3";
constexpr const char* kRelease =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

constexpr milliseconds kCommandTimeout{5000};
constexpr seconds kSlotKept = hours(24 * 7);

/// One connection on a loop of its own (a thread while a fire runs; the caller's
/// thread between fires).
class Link {
 public:
  Link(redis::RedisUrl url, milliseconds timeout) : url_(std::move(url)), timeout_(timeout) {}

  asio::io_context& io() { return io_; }

  /// One command, connecting first if needed; one reconnect after a lost connection.
  asio::awaitable<RedisReply> command(RedisCommand args) {
    for (int attempt = 1;; ++attempt) {
      try {
        if (!conn_ || conn_->broken()) conn_ = co_await RedisConnection::connect(io_.get_executor(), url_, timeout_);
        RedisReply r = co_await conn_->command(args, timeout_);
        if (r.is_error() && redis::is_transient_error(r) && attempt < 2) continue;
        co_return r;
      } catch (const RedisError& e) {
        if (e.kind != RedisError::Kind::connection || attempt >= 2) throw;
      }
    }
  }

  /// Runs `work` to its end on this thread (no thread may be running the loop).
  template <class T>
  T run(asio::awaitable<T> work) {
    auto f = asio::co_spawn(io_, std::move(work), asio::use_future);
    io_.restart();
    // Not run(): a connection keeps a read armed, so the loop never runs out of work.
    while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io_.run_one();
    return f.get();
  }

 private:
  asio::io_context io_;
  redis::RedisUrl url_;
  milliseconds timeout_;
  std::unique_ptr<RedisConnection> conn_;
};

class RedisLease : public RunLease {
 public:
  RedisLease(std::shared_ptr<Link> link, std::string key, std::string token, milliseconds ttl, std::string where)
      : link_(std::move(link)), key_(std::move(key)), token_(std::move(token)), ttl_(ttl), where_(std::move(where)),
        valid_until_(steady_clock::now() + ttl), timer_(link_->io()) {}

  ~RedisLease() override {
    if (thread_.joinable()) {
      asio::post(link_->io(), [this] {
        stopping_ = true;
        timer_.cancel();
        link_->io().stop();  // a connection keeps a read armed: the loop would not run out of work
      });
      thread_.join();
    }
    try {  // released by its token: an expired lock another took stays theirs
      RedisCommand release{"EVAL", kRelease, "1", key_, token_};
      link_->run(link_->command(release));
    } catch (const std::exception& e) {
      spdlog::warn("the run lock in {} could not be released ({}); it expires by itself", where_, e.what());
    }
    // renew() may still be waiting for a reply (a reconnect): it ends (stopping_)
    // once that comes or times out, and must not resume after this lease is gone.
    while (!renew_done_) {
      link_->io().restart();
      link_->io().run_one();
    }
  }

  void keep(std::function<void(const std::string&)> on_lost) override {
    on_lost_ = std::move(on_lost);
    link_->io().restart();
    renew_done_ = false;
    asio::co_spawn(link_->io(), renew(), [this](std::exception_ptr) { renew_done_ = true; });
    thread_ = std::thread([this] { link_->io().run(); });
  }

  std::function<asio::awaitable<void>()> fence() override {
    return [this]() -> asio::awaitable<void> {
      // On the lease's loop (the run's loop waits meanwhile).
      auto check = [this]() -> asio::awaitable<void> {
        std::string why;
        if (lost_) why = lost_why_;
        else if (auto left = duration_cast<milliseconds>(valid_until_.load() - steady_clock::now()); left < ttl_ / 3)
          why = left.count() <= 0 ? "not renewed; it expired " + std::to_string(-left.count()) + " ms ago"
                                  : "not renewed; it expires in " + std::to_string(left.count()) + " ms";
        else {
          try {
            RedisCommand check_lock{"EVAL", kCheck, "1", key_, token_};  // named: GCC 12 miscompiles a braced list in a co_await
            RedisReply r = co_await link_->command(check_lock);
            if (r.is_error()) why = r.str;
            else if (r.integer == -3) why = "another instance holds it now";
            else if (r.integer < ttl_.count() / 3) why = "it expires in " + std::to_string(r.integer) + " ms";
          } catch (const std::exception& e) {
            why = e.what();
          }
        }
        if (!why.empty())
          throw CheckpointTakenOver("the run lock in " + where_ + " is no longer held (" + why +
                                    "); this run stops without committing more");
      };
      co_await asio::co_spawn(link_->io(), check(), asio::use_awaitable);
    };
  }

 private:
  asio::awaitable<void> renew() {
    while (!stopping_) {
      timer_.expires_after(ttl_ / 3);
      asio::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (stopping_ || lost_) break;
      auto asked = steady_clock::now();
      std::string why;
      try {
        std::string ttl = std::to_string(ttl_.count());
        RedisCommand renew_lock{"EVAL", kRenew, "1", key_, token_, ttl};
        RedisReply r = co_await link_->command(renew_lock);
        if (r.is_error()) why = r.str;
        else if (r.integer == 1) valid_until_ = asked + ttl_;
        else why = "it expired and another instance holds it now";
      } catch (const std::exception& e) {
        if (steady_clock::now() >= valid_until_.load()) why = e.what();
        else spdlog::warn("cannot renew the run lock in {} ({}); trying again", where_, e.what());
      }
      if (!why.empty() && !stopping_) {
        lost_why_ = why;
        lost_ = true;
        if (on_lost_) on_lost_("lost the run lock in " + where_ + " (" + why + "); this run stops without committing more");
        break;
      }
    }
  }

  std::shared_ptr<Link> link_;
  std::string key_, token_;
  milliseconds ttl_;
  std::string where_;
  std::atomic<steady_clock::time_point> valid_until_;
  asio::steady_timer timer_;
  std::thread thread_;
  std::function<void(const std::string&)> on_lost_;
  std::atomic<bool> lost_{false};
  std::string lost_why_;
  bool stopping_ = false;
  std::atomic<bool> renew_done_{true};  ///< renew() has ended (or was never started)
};

class RedisSlotBook : public SlotBook {
 public:
  RedisSlotBook(const ScheduleSpec& spec, const std::string& pipeline)
      : url_(redis::parse_redis_url(spec.redis_url)), ttl_(spec.lock_ttl),
        link_(std::make_shared<Link>(url_, kCommandTimeout)), prefix_("aetl:schedule:" + pipeline + ":") {
    auto r = link_->run(link_->command({"PING"}));
    if (r.is_error()) throw std::runtime_error("redis " + url_.where() + ": " + r.str);
  }

  std::string where() const override { return "redis " + url_.where(); }

  std::optional<Slot> last_claimed() override {
    RedisReply r = call({"GET", prefix_ + "last"});
    if (r.type != RedisReply::Type::string) return std::nullopt;
    return Slot(seconds(std::stoll(r.str)));
  }

  std::optional<std::string> holder(Slot slot) override {
    RedisReply r = call({"GET", slot_key(slot)});
    if (r.type != RedisReply::Type::string) return std::nullopt;
    return r.str;
  }

  std::unique_ptr<RunLease> lock(const std::string& owner, std::string& holder) override {
    std::string token = owner + " " + random_hex();
    std::string key = prefix_ + "lock";
    RedisReply r = call({"SET", key, token, "NX", "PX", std::to_string(ttl_.count())});
    if (r.is_nil()) {
      RedisReply h = call({"GET", key});
      holder = h.type == RedisReply::Type::string ? h.str.substr(0, h.str.rfind(' ')) : "another instance";
      return nullptr;
    }
    return std::make_unique<RedisLease>(link_, key, token, ttl_, where());
  }

  std::optional<std::string> claim(Slot slot, const std::string& owner) override {
    RedisReply r = call({"EVAL", kClaim, "2", slot_key(slot), prefix_ + "last", owner, std::to_string(kSlotKept.count()),
                         std::to_string(slot.time_since_epoch().count())});
    if (r.elements.size() != 2) throw std::runtime_error(where() + ": unexpected reply to the slot claim");
    if (r.elements[0].integer == 1) return std::nullopt;
    return r.elements[1].type == RedisReply::Type::string ? r.elements[1].str : std::string("another instance");
  }

 private:
  RedisReply call(RedisCommand args) {
    std::vector<std::string> owned(args.begin(), args.end());  // the views must outlive the coroutine
    RedisCommand views(owned.begin(), owned.end());
    RedisReply r = link_->run(link_->command(views));
    if (r.is_error()) throw std::runtime_error(where() + ": " + r.str);
    return r;
  }
  std::string slot_key(Slot slot) const { return prefix_ + "slot:" + std::to_string(slot.time_since_epoch().count()); }
  static std::string random_hex() {
    std::random_device rd;
    std::mt19937_64 g(rd());
    char buf[17];
    snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(g()));
    return buf;
  }

  redis::RedisUrl url_;
  milliseconds ttl_;
  std::shared_ptr<Link> link_;
  std::string prefix_;
};

}  // namespace

std::unique_ptr<SlotBook> redis_slot_book(const ScheduleSpec& spec, const std::string& pipeline) {
  return std::make_unique<RedisSlotBook>(spec, pipeline);
}

}  // namespace aetl
