#include "engine/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace aetl {

void tune_allocator() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  auto tuned = [tunables](const char* env, const char* tunable) {
    return std::getenv(env) || (tunables && std::strstr(tunables, tunable));
  };
  if (!tuned("MALLOC_ARENA_MAX", "malloc.arena_max")) mallopt(M_ARENA_MAX, 2);
  if (!tuned("MALLOC_MMAP_THRESHOLD_", "malloc.mmap_threshold")) mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

}  // namespace aetl
