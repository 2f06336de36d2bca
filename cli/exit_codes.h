#pragma once
/// The process exit codes, documented in man/afetch.1 and man/aetl.1.
/// Only cli/main.cpp turns them into a process status.
namespace aetl {

enum class ExitCode : int {
  ok = 0,           ///< every item succeeded
  failures = 1,     ///< some items failed after their retries (or the deadline cut the run short)
  usage = 2,        ///< bad flags, unreadable input, malformed input lines
  busy = 75,        ///< EX_TEMPFAIL: another run holds the state lock, or took over an exactly-once sink
  interrupted = 130 ///< SIGINT/SIGTERM: stopped early, everything finished was written
};

/// The more serious of two outcomes: interrupted > busy > usage > failures > ok.
constexpr ExitCode worst(ExitCode a, ExitCode b) {
  auto rank = [](ExitCode c) {
    switch (c) {
      case ExitCode::interrupted: return 4;
      case ExitCode::busy: return 3;
      case ExitCode::usage: return 2;
      case ExitCode::failures: return 1;
      case ExitCode::ok: return 0;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace aetl
