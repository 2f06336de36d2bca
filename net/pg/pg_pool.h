#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "net/pg/pg_connection.h"
#include "engine/wakeup.h"

namespace aetl::pg {

/// Connections to one server for one sink or source (`pool: {min, max}`): `min`
/// are opened up front (so a wrong password fails the run before it starts),
/// at most `max` exist. A connection handed back broken is dropped and a new one
/// is made on the next acquire().
class PgPool {
 public:
  PgPool(asio::any_io_executor ex, std::string conninfo, size_t min, size_t max, std::chrono::milliseconds timeout);
  ~PgPool();

  asio::awaitable<void> open();
  /// A connection of one's own until release(); waits while `max` are out.
  asio::awaitable<std::unique_ptr<PgConnection>> acquire();
  void release(std::unique_ptr<PgConnection> c);
  /// Interrupts every connection that is out (the run is aborting).
  void interrupt_all();
  const std::string& conninfo() const { return conninfo_; }

 private:
  asio::any_io_executor ex_;
  std::string conninfo_;
  size_t min_, max_;
  std::chrono::milliseconds timeout_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::vector<PgConnection*> out_;
  size_t opening_ = 0;
  Wakeup returned_;
};

/// Runs `task` to its end on a loop of its own (before the run's loop starts:
/// reading an exactly-once sink's checkpoint).
void run_alone(std::function<asio::awaitable<void>(asio::any_io_executor)> task);

}  // namespace aetl::pg
