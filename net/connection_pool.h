#pragma once
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/wakeup.h"

namespace aetl {

/// Connections to one server for one sink or source (`pool: {min, max}`): `min`
/// are opened up front (so a wrong password fails the run before it starts), at
/// most `max` exist. A connection handed back broken is dropped and a new one is
/// made on the next acquire(). `Connection` has broken() and interrupt(); the
/// connect function throws what connecting throws. Loop thread only.
template <class Connection>
class ConnectionPool {
 public:
  using Connect = std::function<asio::awaitable<std::unique_ptr<Connection>>()>;
  ConnectionPool(asio::any_io_executor ex, Connect connect, size_t min, size_t max)
      : connect_(std::move(connect)), min_(min), max_(std::max<size_t>(1, max)), returned_(ex) {}

  asio::awaitable<void> open() {
    while (idle_.size() < min_) idle_.push_back(co_await connect_());
  }

  /// A connection of one's own until release(); waits while `max` are out.
  asio::awaitable<std::unique_ptr<Connection>> acquire() {
    for (;;) {
      while (!idle_.empty()) {
        std::unique_ptr<Connection> c = std::move(idle_.back());
        idle_.pop_back();
        if (c->broken()) continue;  // the server went away meanwhile
        out_.push_back(c.get());
        co_return c;
      }
      if (out_.size() + opening_ < max_) {
        ++opening_;
        std::unique_ptr<Connection> c;
        std::exception_ptr error;
        try {
          c = co_await connect_();
        } catch (...) {
          error = std::current_exception();
        }
        --opening_;
        if (error) std::rethrow_exception(error);
        out_.push_back(c.get());
        co_return c;
      }
      co_await returned_.wait();
    }
  }

  void release(std::unique_ptr<Connection> c) {
    if (!c) return;
    out_.erase(std::remove(out_.begin(), out_.end(), c.get()), out_.end());
    if (!c->broken()) idle_.push_back(std::move(c));
    returned_.notify();
  }

  /// Interrupts every connection that is out (the run is aborting).
  void interrupt_all() {
    for (Connection* c : out_) c->interrupt();
  }

  /// The idle connections, taken out (to close them with a deadline).
  std::vector<std::unique_ptr<Connection>> take_idle() { return std::move(idle_); }

 private:
  Connect connect_;
  size_t min_, max_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::vector<Connection*> out_;
  size_t opening_ = 0;
  Wakeup returned_;
};

/// Runs `task` to its end on a loop of its own (before the run's loop starts:
/// reading an exactly-once sink's checkpoint).
void run_alone(std::function<asio::awaitable<void>(asio::any_io_executor)> task);

}  // namespace aetl
