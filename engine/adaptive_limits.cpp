#include "engine/adaptive_limits.h"

#include <algorithm>
#include <cmath>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace aetl {

namespace {
constexpr size_t kLatencySamples = 32;                     // the baseline is the lowest of these
constexpr std::chrono::milliseconds kLatencySlack{10};    // below this over 2× baseline: still near it
}  // namespace

struct AdaptiveLimits::Key {
  double limit = 4;
  size_t in_flight = 0;
  std::deque<asio::steady_timer*> waiting;
  std::deque<std::chrono::microseconds> recent;  // latencies of good answers
  Clock::time_point last_decrease{};
  Clock::time_point paused_until{};
  size_t good_in_round = 0;  // good answers since the limit last moved
  size_t slots() const { return static_cast<size_t>(std::max(1.0, std::floor(limit))); }
  std::chrono::microseconds baseline() const {
    return recent.empty() ? std::chrono::microseconds::max() : *std::min_element(recent.begin(), recent.end());
  }
};

AdaptiveLimits::AdaptiveLimits(asio::any_io_executor ex, Settings settings) : ex_(std::move(ex)), settings_(settings) {}
AdaptiveLimits::~AdaptiveLimits() = default;

AdaptiveLimits::Key& AdaptiveLimits::key(const std::string& name) {
  auto& k = keys_[name];
  if (!k) {
    k = std::make_unique<Key>();
    k->limit = std::min(settings_.initial, settings_.max);
  }
  return *k;
}

asio::awaitable<AdaptiveLimits::Clock::time_point> AdaptiveLimits::acquire(const std::string& name) {
  Key& k = key(name);  // keys are never erased: the reference stays valid
  for (;;) {
    auto now = Clock::now();
    if (aborted_ || (k.paused_until <= now && k.in_flight < k.slots() && k.waiting.empty())) {
      ++k.in_flight;
      co_return now;
    }
    asio::steady_timer timer(ex_, k.paused_until > now ? k.paused_until : Clock::time_point::max());
    k.waiting.push_back(&timer);
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    auto it = std::find(k.waiting.begin(), k.waiting.end(), &timer);
    if (it != k.waiting.end()) k.waiting.erase(it);
    now = Clock::now();
    if (aborted_ || (k.paused_until <= now && k.in_flight < k.slots())) {
      ++k.in_flight;
      co_return now;
    }
  }
}

void AdaptiveLimits::wake(Key& k) {
  auto now = Clock::now();
  if (k.paused_until > now) {  // the pause's end wakes them (their timers run to it)
    for (auto* t : k.waiting) t->expires_at(k.paused_until);
    return;
  }
  size_t free = k.slots() > k.in_flight ? k.slots() - k.in_flight : 0;
  while (free-- > 0 && !k.waiting.empty()) {
    k.waiting.front()->cancel();
    k.waiting.pop_front();
  }
}

void AdaptiveLimits::release(const std::string& name, Clock::time_point started, Signal signal,
                             std::chrono::milliseconds pause) {
  Key& k = key(name);
  if (k.in_flight > 0) --k.in_flight;
  auto now = Clock::now();
  auto latency = std::chrono::duration_cast<std::chrono::microseconds>(now - started);
  if (signal == Signal::good) {
    auto base = k.baseline();
    bool slow = base != std::chrono::microseconds::max() && latency > 2 * base + kLatencySlack;
    k.recent.push_back(latency);
    if (k.recent.size() > kLatencySamples) k.recent.pop_front();
    if (slow) signal = Signal::overload;
    else if (++k.good_in_round >= k.slots()) {  // a round of good answers: one more
      k.limit = std::min(settings_.max, k.limit + 1.0);
      k.good_in_round = 0;
    }
  }
  if (signal == Signal::overload && started >= k.last_decrease) {
    k.limit = std::max(1.0, k.limit * 0.9);
    k.last_decrease = now;
    k.good_in_round = 0;
  }
  if (pause.count() > 0) k.paused_until = std::max(k.paused_until, now + pause);
  wake(k);
}

size_t AdaptiveLimits::limit(const std::string& name) const {
  auto it = keys_.find(name);
  if (it == keys_.end()) return static_cast<size_t>(std::min(settings_.initial, settings_.max));
  return it->second->slots();
}

std::vector<std::pair<std::string, size_t>> AdaptiveLimits::limits() const {
  std::vector<std::pair<std::string, size_t>> out;
  for (const auto& [name, k] : keys_) out.emplace_back(name, k->slots());
  std::sort(out.begin(), out.end());
  return out;
}

void AdaptiveLimits::wake_all() {
  aborted_ = true;
  for (auto& [name, k] : keys_) {
    for (auto* t : k->waiting) t->cancel();
    k->waiting.clear();
  }
}

}  // namespace aetl
