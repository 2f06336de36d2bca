#include "net/http/attempt_policy.h"

#include <curl/curl.h>

#include <optional>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/adaptive_limits.h"
#include "engine/keyed_limiter.h"
#include "engine/rate_limiter.h"
#include "engine/semaphore.h"
#include "engine/shutdown.h"

namespace aetl {

using namespace asio::experimental::awaitable_operators;

namespace {

/// One permit of a semaphore, given back on every way out.
class Permit {
 public:
  explicit Permit(AsyncSemaphore& sem) : sem_(sem) {}
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  ~Permit() { sem_.release(); }

 private:
  AsyncSemaphore& sem_;
};

/// One per-host permit, given back on every way out.
class HostPermit {
 public:
  HostPermit(KeyedLimiter& limiter, const std::string& key) : limiter_(limiter), key_(key) {}
  HostPermit(const HostPermit&) = delete;
  HostPermit& operator=(const HostPermit&) = delete;
  ~HostPermit() { limiter_.release(key_); }

 private:
  KeyedLimiter& limiter_;
  const std::string& key_;
};

}  // namespace

namespace {

/// A host's adaptive permit: given back on every way out, with what the attempt came to.
class AdaptivePermit {
 public:
  AdaptivePermit(AdaptiveLimits& limits, const std::string& key, AdaptiveLimits::Clock::time_point started)
      : limits_(limits), key_(key), started_(started) {}
  AdaptivePermit(const AdaptivePermit&) = delete;
  AdaptivePermit& operator=(const AdaptivePermit&) = delete;
  ~AdaptivePermit() { limits_.release(key_, started_, signal, pause); }
  AdaptiveLimits::Signal signal = AdaptiveLimits::Signal::neutral;
  std::chrono::milliseconds pause{0};

 private:
  AdaptiveLimits& limits_;
  const std::string& key_;
  AdaptiveLimits::Clock::time_point started_;
};

/// What an answer tells the adaptive limit of its host.
AdaptiveLimits::Signal signal_of(const HttpResponse& r) {
  if (r.aborted) return AdaptiveLimits::Signal::neutral;
  if (r.curl_code == CURLE_OPERATION_TIMEDOUT) return AdaptiveLimits::Signal::overload;
  if (r.curl_code != CURLE_OK) return AdaptiveLimits::Signal::neutral;
  if (r.status == 429 || r.status == 503) return AdaptiveLimits::Signal::overload;
  if (r.status >= 500) return AdaptiveLimits::Signal::neutral;
  return AdaptiveLimits::Signal::good;
}

}  // namespace

struct AttemptPolicy::Gates {
  Gates(asio::any_io_executor ex, RunControl& control, const AttemptLimits& l)
      : in_flight(ex, l.concurrency), hosts(ex, l.adaptive ? 0 : l.per_host) {
    if (l.shared_rate) rate = l.shared_rate(ex);
    else if (l.rate > 0) rate = std::make_unique<RateLimiter>(ex, l.rate, l.burst);
    if (l.adaptive) {
      double max = static_cast<double>(l.per_host ? std::min(l.per_host, l.concurrency) : l.concurrency);
      adaptive = std::make_unique<AdaptiveLimits>(ex, AdaptiveLimits::Settings{std::min(4.0, max), max});
      control.on_abort([a = adaptive.get()] { a->wake_all(); });
    }
  }
  AsyncSemaphore in_flight;
  KeyedLimiter hosts;
  std::unique_ptr<RateGate> rate;
  std::unique_ptr<AdaptiveLimits> adaptive;
};

bool is_retryable(const HttpResponse& r) {
  switch (static_cast<CURLcode>(r.curl_code)) {
    case CURLE_OK: return r.status == 429 || (r.status >= 500 && r.status <= 599);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

bool is_success(const HttpResponse& r) { return r.curl_code == 0 && r.status >= 200 && r.status <= 299; }

std::string attempt_error(const Attempted& a) {
  const HttpResponse& r = a.response;
  if (is_success(r)) return {};
  std::string error = r.curl_code != 0 ? r.error : "HTTP " + std::to_string(r.status);
  if (!a.give_up.empty()) error += "; " + a.give_up;
  return error;
}

AttemptPolicy::AttemptPolicy(asio::any_io_executor ex, RunControl& control, HttpTransport& transport,
                             AttemptLimits limits)
    : control_(control),
      transport_(transport),
      limits_(std::move(limits)),
      gates_(std::make_unique<Gates>(ex, control, limits_)) {}

AttemptPolicy::~AttemptPolicy() = default;

size_t AttemptPolicy::in_flight() const { return gates_->in_flight.in_use(); }

std::vector<std::pair<std::string, size_t>> AttemptPolicy::host_limits() const {
  return gates_->adaptive ? gates_->adaptive->limits() : std::vector<std::pair<std::string, size_t>>{};
}

asio::awaitable<void> AttemptPolicy::wait(std::chrono::milliseconds delay) {
  if (sleep_) {
    co_await sleep_(delay);
    co_return;
  }
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  if (limits_.stop_ends_waits) co_await (timer.async_wait(asio::use_awaitable) || control_.wait_stop());
  else co_await (timer.async_wait(asio::use_awaitable) || control_.wait_abort());
}

asio::awaitable<Attempted> AttemptPolicy::perform(const HttpRequest& request, const std::string& host,
                                                  BodyConsumer* body,
                                                  const std::function<asio::awaitable<void>()>& before_attempt) {
  Gates& g = *gates_;
  Attempted result;
  for (;;) {
    // The rate token first, so no permit is held while waiting for it.
    if (g.rate) {
      if (limits_.stop_ends_waits) co_await (g.rate->acquire() || control_.wait_stop());
      else co_await (g.rate->acquire() || control_.wait_abort());
    }
    if (control_.aborted() || (limits_.stop_ends_waits && control_.stopping())) break;
    {
      std::optional<AdaptivePermit> adaptive_permit;
      if (g.adaptive) adaptive_permit.emplace(*g.adaptive, host, co_await g.adaptive->acquire(host));
      co_await g.hosts.acquire(host);
      HostPermit host_permit(g.hosts, host);
      co_await g.in_flight.acquire();
      Permit flight_permit(g.in_flight);
      // After a stop, only work already on the wire finishes; a first attempt that
      // has not started yet is left for the next run.
      if (control_.aborted() || (result.attempts == 0 && control_.stopping())) break;
      if (before_attempt) co_await before_attempt();
      if (observer_) observer_->attempt_started();
      result.response = co_await transport_.perform(request, body);
      if (observer_) observer_->attempt_ended(result.response);
      if (adaptive_permit) {
        adaptive_permit->signal = signal_of(result.response);
        if (adaptive_permit->signal == AdaptiveLimits::Signal::overload && result.response.retry_after_s > 0)
          adaptive_permit->pause = std::chrono::milliseconds(
              std::min<int64_t>(result.response.retry_after_s, 3600) * 1000);
      }
      if (result.response.aborted) break;
      ++result.attempts;
    }  // nobody waits for a permit while this request backs off
    if (g.adaptive && observer_) observer_->host_limit(host, g.adaptive->limit(host));
    if (!is_retryable(result.response) || result.attempts > limits_.retry.max_retries) co_return result;
    const RetryPolicy& retry = limits_.retry;
    int64_t asked = result.response.retry_after_s;
    std::optional<std::chrono::milliseconds> delay = asked >= 0 ? retry_after_delay(retry, result.attempts, asked, rng_)
                                                                : backoff_delay(retry, result.attempts, rng_);
    if (!delay) {
      result.give_up = "server asked to retry after " + std::to_string(asked) +
                       " s, longer than the backoff maximum (" + std::to_string(retry.max_backoff.count()) + " ms)";
      co_return result;
    }
    if (observer_) observer_->retry_waiting(*delay);
    co_await wait(*delay);
    if (control_.aborted() || (limits_.stop_ends_waits && control_.stopping())) break;
  }
  result.dropped = true;
  co_return result;
}

}  // namespace aetl
