#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

class AsyncSemaphore;

/// At most `limit` holders per key (per host, for example). Keys are forgotten
/// when nobody holds or waits for them, so memory follows the keys in use.
/// A limit of 0 means unlimited. Not thread-safe: one executor.
class KeyedLimiter {
 public:
  KeyedLimiter(asio::any_io_executor ex, size_t limit);
  ~KeyedLimiter();

  asio::awaitable<void> acquire(const std::string& key);
  void release(const std::string& key);

  size_t keys_in_use() const { return entries_.size(); }

 private:
  struct Entry {
    std::unique_ptr<AsyncSemaphore> sem;
    size_t users = 0;  // holders plus waiters
  };
  asio::any_io_executor ex_;
  size_t limit_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace aetl
