#include "engine/keyed_limiter.h"

#include "engine/semaphore.h"

namespace aetl {

KeyedLimiter::KeyedLimiter(asio::any_io_executor ex, size_t limit) : ex_(std::move(ex)), limit_(limit) {}
KeyedLimiter::~KeyedLimiter() = default;

asio::awaitable<void> KeyedLimiter::acquire(const std::string& key) {
  if (limit_ == 0) co_return;
  auto& entry = entries_[key];
  if (!entry.sem) entry.sem = std::make_unique<AsyncSemaphore>(ex_, limit_);
  ++entry.users;
  AsyncSemaphore* sem = entry.sem.get();  // the map may rehash while we wait
  try {
    co_await sem->acquire();
  } catch (...) {
    auto it = entries_.find(key);
    if (it != entries_.end() && --it->second.users == 0) entries_.erase(it);
    throw;
  }
}

void KeyedLimiter::release(const std::string& key) {
  if (limit_ == 0) return;
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.sem->release();
  if (--it->second.users == 0) entries_.erase(it);
}

}  // namespace aetl
