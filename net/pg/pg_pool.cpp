#include "net/pg/pg_pool.h"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

namespace aetl::pg {

PgPool::PgPool(asio::any_io_executor ex, std::string conninfo, size_t min, size_t max,
               std::chrono::milliseconds timeout)
    : ex_(ex), conninfo_(std::move(conninfo)), min_(min), max_(std::max<size_t>(1, max)), timeout_(timeout),
      returned_(ex) {}

PgPool::~PgPool() = default;

asio::awaitable<void> PgPool::open() {
  while (idle_.size() < min_) idle_.push_back(co_await PgConnection::connect(ex_, conninfo_, timeout_));
}

asio::awaitable<std::unique_ptr<PgConnection>> PgPool::acquire() {
  for (;;) {
    while (!idle_.empty()) {
      std::unique_ptr<PgConnection> c = std::move(idle_.back());
      idle_.pop_back();
      if (c->broken()) continue;  // the server went away meanwhile
      out_.push_back(c.get());
      co_return c;
    }
    if (out_.size() + opening_ < max_) {
      ++opening_;
      std::unique_ptr<PgConnection> c;
      std::exception_ptr error;
      try {
        c = co_await PgConnection::connect(ex_, conninfo_, timeout_);
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

void PgPool::release(std::unique_ptr<PgConnection> c) {
  if (!c) return;
  out_.erase(std::remove(out_.begin(), out_.end(), c.get()), out_.end());
  if (!c->broken()) idle_.push_back(std::move(c));
  returned_.notify();
}

void PgPool::interrupt_all() {
  for (PgConnection* c : out_) c->interrupt();
}

void run_alone(std::function<asio::awaitable<void>(asio::any_io_executor)> task) {
  asio::io_context io;
  std::exception_ptr error;
  asio::co_spawn(io, task(io.get_executor()), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

}  // namespace aetl::pg
