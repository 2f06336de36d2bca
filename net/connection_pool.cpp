#include "net/connection_pool.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace aetl {

void run_alone(std::function<asio::awaitable<void>(asio::any_io_executor)> task) {
  asio::io_context io;
  std::exception_ptr error;
  asio::co_spawn(io, task(io.get_executor()), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

}  // namespace aetl
