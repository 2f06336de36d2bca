#include "engine/nothrow_new.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace aetl {
namespace {
thread_local bool failed = false;
std::atomic<int> fail_in{-1};

void* allocate(std::size_t n) noexcept {
  if (fail_in.load(std::memory_order_relaxed) >= 0 && fail_in.fetch_sub(1) == 0) {
    failed = true;
    return nullptr;
  }
  void* p = std::malloc(n ? n : 1);
  if (!p) failed = true;
  return p;
}
}  // namespace

void clear_nothrow_failure() noexcept { failed = false; }
bool nothrow_failure() noexcept { return failed; }
void fail_nothrow_allocation_in(int n) noexcept { fail_in.store(n); }

}  // namespace aetl

void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return aetl::allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return aetl::allocate(n); }
