#include "engine/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace aetl {

void tune_allocator() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  auto set = [tunables](int param, int value, const char* env, const char* tunable) {
    if (std::getenv(env) || (tunables && std::strstr(tunables, tunable))) return;
    mallopt(param, value);
  };
  set(M_ARENA_MAX, 2, "MALLOC_ARENA_MAX", "malloc.arena_max");
  set(M_MMAP_THRESHOLD, 1 << 20, "MALLOC_MMAP_THRESHOLD_", "malloc.mmap_threshold");
  set(M_TRIM_THRESHOLD, 64 << 20, "MALLOC_TRIM_THRESHOLD_", "malloc.trim_threshold");
}

void release_free_memory() { malloc_trim(0); }

}  // namespace aetl
