#pragma once
#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

namespace aetl {

/// Threads for blocking work (disk writes, fsync, SQLite, reads of regular files),
/// so the loop thread never waits on a disk. The run_in_executor idea.
class BlockingPool {
 public:
  explicit BlockingPool(size_t threads);
  ~BlockingPool();
  asio::thread_pool& pool() { return pool_; }
  void join();

 private:
  asio::thread_pool pool_;
};

/// Runs `fn` on `pool` and resumes the awaiting coroutine on its own executor
/// with fn's result (or rethrows its exception). `fn` is moved into the pool's
/// queue at once (it is left moved-from).
///
/// Takes an lvalue on purpose: GCC 12 destroys a closure *temporary* that sits in
/// a co_await full-expression twice (a double free when it captures a string), so
/// callers name the function object first: `auto job = [..]{..}; co_await run_blocking(pool, job);`
template <class Fn>
auto run_blocking(asio::thread_pool& pool, Fn& fn) {
  using R = std::invoke_result_t<Fn&>;
  if constexpr (std::is_void_v<R>) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        [&pool](auto handler, Fn f) {
          auto ex = asio::get_associated_executor(handler);
          asio::post(pool, [handler = std::move(handler), f = std::move(f), ex]() mutable {
            std::exception_ptr e;
            try {
              f();
            } catch (...) {
              e = std::current_exception();
            }
            asio::post(ex, [handler = std::move(handler), e]() mutable { std::move(handler)(e); });
          });
        },
        asio::use_awaitable, std::move(fn));
  } else {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
        [&pool](auto handler, Fn f) {
          auto ex = asio::get_associated_executor(handler);
          asio::post(pool, [handler = std::move(handler), f = std::move(f), ex]() mutable {
            std::exception_ptr e;
            R result{};
            try {
              result = f();
            } catch (...) {
              e = std::current_exception();
            }
            asio::post(ex, [handler = std::move(handler), e, result = std::move(result)]() mutable {
              std::move(handler)(e, std::move(result));
            });
          });
        },
        asio::use_awaitable, std::move(fn));
  }
}

}  // namespace aetl
