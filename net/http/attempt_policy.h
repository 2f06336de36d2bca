#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/retry.h"
#include "net/http/http_transport.h"

namespace aetl {

class RunControl;
class RateGate;

/// Transfers in flight by default, for afetch -j and the pipeline fetch stage alike.
inline constexpr size_t kDefaultFetchConcurrency = 32;

/// The limits every attempt of a fetch stage shares.
struct AttemptLimits {
  size_t concurrency = kDefaultFetchConcurrency;  ///< transfers in flight at most
  size_t per_host = 0;                            ///< per host:port; 0 = no extra limit
  double rate = 0;                                ///< attempts started per second; 0 = unlimited
  double burst = 1;
  /// Set: the rate is kept by the gate this makes (shared with other processes,
  /// net/redis/shared_rate_limiter.h) instead of a local RateLimiter.
  std::function<std::unique_ptr<RateGate>(asio::any_io_executor)> shared_rate;
  RetryPolicy retry;                              ///< retries after the first attempt, backoff bounds
  /// `concurrency: auto` (afetch -j auto): each host's limit finds its own value
  /// (engine/adaptive_limits.h), from 4 up to `per_host` (0: up to `concurrency`);
  /// Retry-After on a 429 or 503 pauses the host.
  bool adaptive = false;
  /// A stop also ends the waits between attempts (the request is then dropped):
  /// for a reader whose unfinished request is simply asked again by the next run.
  /// Otherwise only an abort does, so work already taken in is finished after a stop.
  bool stop_ends_waits = false;
};

/// In flight at most with `concurrency: auto`, all hosts together.
inline constexpr size_t kAdaptiveConcurrencyMax = 256;

/// What one request came to after all its attempts.
struct Attempted {
  HttpResponse response;  ///< the last attempt's
  int attempts = 0;       ///< attempts that reached the transport and ended
  bool dropped = false;   ///< cancelled by the run (abort, or a stop before its first attempt): no outcome
  std::string give_up;    ///< why a retryable failure was not retried (a too long Retry-After), else empty
};

/// True for responses worth another attempt: connection and timeout errors,
/// broken transfers, 429 and 5xx.
bool is_retryable(const HttpResponse& response);

/// True for a 2xx response with no transport error.
bool is_success(const HttpResponse& response);

/// The error text of a finished request: empty on success, else the transport's
/// message or "HTTP <status>", followed by "; <give_up>" when the retries stopped early.
std::string attempt_error(const Attempted& a);

/// Told about each attempt, on the loop thread (progress counters, summaries, tests).
class AttemptObserver {
 public:
  virtual ~AttemptObserver() = default;
  virtual void attempt_started() {}
  /// The attempt came back (response.aborted: cancelled by the run, no outcome).
  virtual void attempt_ended(const HttpResponse&) {}
  /// Another attempt will follow after `delay`.
  virtual void retry_waiting(std::chrono::milliseconds /*delay*/) {}
  /// `concurrency: auto`: `host`'s limit after an attempt ended.
  virtual void host_limit(const std::string& /*host*/, size_t /*limit*/) {}
};

/// The one fetch attempt policy: each attempt waits for a rate token, then a
/// per-host permit and an in-flight permit (held for the attempt only, released
/// on every way out); retryable outcomes are tried again up to retry.max_retries
/// times after a full-jitter backoff, or after Retry-After when the server asks
/// for longer (a wish beyond the backoff maximum ends the retries, see give_up).
/// Every wait gives way to an abort (the request is then dropped), and to a stop
/// with limits.stop_ends_waits; after a stop only requests that already made an
/// attempt go on. One per stage, loop thread only.
class AttemptPolicy {
 public:
  /// Waits `delay` or until the run aborts (or stops, with stop_ends_waits); tests
  /// substitute one that only records.
  using Sleep = std::function<asio::awaitable<void>(std::chrono::milliseconds delay)>;

  AttemptPolicy(asio::any_io_executor ex, RunControl& control, HttpTransport& transport, AttemptLimits limits);
  ~AttemptPolicy();

  /// Runs the attempts of `request` (`host`: its host:port, for per_host).
  /// `before_attempt`, if given, is awaited with the permits held, before each attempt.
  asio::awaitable<Attempted> perform(const HttpRequest& request, const std::string& host, BodyConsumer* body,
                                     const std::function<asio::awaitable<void>()>& before_attempt = {});

  void set_observer(AttemptObserver* observer) { observer_ = observer; }
  void set_sleep(Sleep sleep) { sleep_ = std::move(sleep); }
  void seed(uint64_t seed) { rng_.seed(seed); }
  const AttemptLimits& limits() const { return limits_; }
  /// Attempts on the transport right now.
  size_t in_flight() const;
  /// `concurrency: auto`: each host's current limit (empty otherwise).
  std::vector<std::pair<std::string, size_t>> host_limits() const;

 private:
  struct Gates;
  asio::awaitable<void> wait(std::chrono::milliseconds delay);

  RunControl& control_;
  HttpTransport& transport_;
  AttemptLimits limits_;
  std::unique_ptr<Gates> gates_;
  AttemptObserver* observer_ = nullptr;
  Sleep sleep_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace aetl
