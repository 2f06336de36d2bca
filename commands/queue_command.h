#pragma once
#include <functional>

#include "cli/exit_codes.h"

namespace CLI {
class App;
}

namespace aetl {

/// `aetl queue STREAM`: a Redis stream's state for people (text) or scripts
/// (--json) on stdout: length, groups with their pending entries, lag and oldest
/// pending entry, consumers with pending counts and idle times, dead letters. A
/// missing stream is exit 1; a bad URL, an unreachable server, a refused
/// password or a key that is not a stream exit 2.
std::function<ExitCode()> setup_queue_command(CLI::App& app);

}  // namespace aetl
