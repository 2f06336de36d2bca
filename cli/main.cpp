// aetl / afetch entry point: one binary, dispatching on its name.
#include <curl/curl.h>

#include <errno.h>
#include <unistd.h>

#include <csignal>
#include <exception>
#include <new>
#include <cstring>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/allocator.h"
#include "engine/setup_error.h"
#include "cli/exit_codes.h"
#include "cli/fd_limit.h"
#include "cli/logging.h"
#include "commands/command_table.h"
#include "commands/fetch_command.h"

namespace {

/// One line on stderr for what escaped: out of memory, or an exception where none
/// may be (a pool thread, a destructor). Exit 1, like any failed run: the state
/// store only ever holds what sinks committed, so a rerun resumes.
[[noreturn]] void on_terminate() noexcept {
  const char* what = "an unexpected internal error";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      what = "out of memory";
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
  }
  const char* parts[] = {program_invocation_short_name, ": error: ", what, "; stopped (what was committed is kept)\n"};
  for (const char* p : parts) {
    ssize_t n = ::write(2, p, std::strlen(p));
    (void)n;
  }
  ::_exit(static_cast<int>(aetl::ExitCode::failures));
}

// Installed before any static constructor of this binary, which may allocate.
__attribute__((constructor(101))) void install_terminate_handler() { std::set_terminate(on_terminate); }

std::string program_name(const char* argv0) {
  const char* slash = std::strrchr(argv0, '/');
  return slash ? slash + 1 : argv0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe shows up as EPIPE and ends the run quietly
  aetl::tune_allocator();  // peak RSS stays flat whatever the input size
  aetl::raise_fd_limit();  // sockets and body files of many transfers at once
  curl_global_init(CURL_GLOBAL_DEFAULT);

  const std::string prog = program_name(argc > 0 ? argv[0] : "aetl");
  const bool as_afetch = prog.rfind("afetch", 0) == 0;

  CLI::App app(as_afetch ? "afetch: fetch many URLs concurrently; one JSON line per URL"
                         : "aetl: asynchronous scraping and ETL pipelines",
               as_afetch ? "afetch" : "aetl");
  aetl::GlobalFlags globals;
  std::function<aetl::ExitCode()> run;
  aetl::build_command_line(app, as_afetch, globals, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    aetl::logging::print_line(prog + ": " + e.what() + " (see " + prog + " --help)");
    return static_cast<int>(aetl::ExitCode::usage);
  }

  int status;
  try {
    if (globals.log_format != "text" && globals.log_format != "json")
      throw aetl::SetupError("--log-format: expected text or json, got '" + globals.log_format + "'");
    aetl::logging::setup(prog, globals.log_level,
                         globals.log_format == "json" ? aetl::logging::Format::json : aetl::logging::Format::text);
    status = static_cast<int>(run());
  } catch (const aetl::SetupError& e) {
    aetl::logging::print_line(prog + ": " + e.what());
    status = static_cast<int>(e.kind() == aetl::SetupError::Kind::busy ? aetl::ExitCode::busy : aetl::ExitCode::usage);
  } catch (const std::bad_alloc&) {
    on_terminate();  // the same one line, without allocating
  } catch (const std::exception& e) {
    aetl::logging::print_line(prog + ": error: " + e.what());
    status = static_cast<int>(aetl::ExitCode::failures);
  }
  curl_global_cleanup();
  return status;
}
