#pragma once
#include <cstdint>

/// The process's file descriptor limit (RLIMIT_NOFILE).
namespace aetl {

/// Raises the soft limit to the hard limit, so a run may hold as many descriptors
/// as the system allows it (many concurrent transfers, sockets plus files). Called
/// once at start by cli/main.cpp, for aetl and afetch alike; failure leaves it be.
void raise_fd_limit();

/// The soft limit in force (what open() and socket() are held to).
uint64_t fd_limit();

}  // namespace aetl
