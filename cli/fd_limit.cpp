#include "cli/fd_limit.h"

#include <sys/resource.h>

#include <limits>

namespace aetl {

void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);  // RLIM_INFINITY may be refused (above fs.nr_open): keep the old one
}

uint64_t fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
    return std::numeric_limits<uint64_t>::max();
  return lim.rlim_cur;
}

}  // namespace aetl
