#pragma once
#include <exception>

namespace aetl {

/// Ends the process through std::terminate with `e` as the exception in flight
/// (cli/main.cpp's handler prints one line and exits 1): for an exception nobody
/// can handle — one escaping a top-level coroutine or an event-loop handler —
/// where unwinding the run's objects under pending work would be unsafe, and
/// where asio::detached would drop it and leave the run waiting forever. Nothing
/// committed is lost: checkpoints only cover what sinks committed.
[[noreturn]] inline void end_on_exception(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (...) {
    std::terminate();
  }
}

/// A co_spawn completion token for top-level coroutines: see end_on_exception.
struct fatal_on_exception {
  void operator()(std::exception_ptr e) const {
    if (e) end_on_exception(e);
  }
};

}  // namespace aetl
