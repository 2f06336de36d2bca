#include "commands/fetch_command.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "engine/setup_error.h"
#include "cli/fd_limit.h"
#include "cli/logging.h"
#include "cli/progress.h"
#include "engine/blocking_pool.h"
#include "engine/duration.h"
#include "engine/engine.h"
#include "net/http/http_client.h"
#include "engine/shutdown.h"
#include "sources/lines/input_files.h"
#include "sources/lines/lines_source.h"
#include "stages/fetch/body_store.h"
#include "stages/fetch.h"
#include "stages/fetch/request_lines.h"
#include "engine/fatal.h"
#include "run/run_lock.h"
#include "stages/fetch/fetch_state.h"
#include "sinks/jsonl/jsonl_sink.h"

namespace aetl {
namespace {

/// The flags as typed; converted and checked by build().
struct FetchFlags {
  std::vector<std::string> inputs;
  size_t concurrency = kDefaultFetchConcurrency;
  size_t per_host = 0;
  std::string rate;
  int retry = 2;
  std::string retry_backoff = "250ms..30s";
  bool ordered = false;
  std::string out_dir;
  std::string output = "-";
  bool append = false;
  std::string body = "none";
  std::string state;
  bool wait = false;
  std::string method;
  std::vector<std::string> headers;
  std::optional<std::string> data;
  std::string user_agent = std::string("afetch/") + AETL_VERSION;
  std::string connect_timeout = "10s";
  std::string timeout = "0";
  std::string low_speed_time = "30s";
  std::string max_bytes;
  long max_redirects = 10;
  bool insecure = false;
  std::string cacert;
  std::string deadline;
  std::string grace = "5s";
  std::string max_line = "16MiB";
  bool quiet = false;
  bool no_progress = false;
};

Millis duration_flag(const std::string& flag, const std::string& text) {
  auto d = parse_duration(text);
  if (!d) throw SetupError(flag + ": invalid duration '" + text + "' (examples: 250ms, 10s, 2m)");
  return *d;
}

int64_t size_flag(const std::string& flag, const std::string& text) {
  auto s = parse_size(text);
  if (!s || *s <= 0) throw SetupError(flag + ": invalid size '" + text + "' (examples: 512k, 10MiB, 1G)");
  return *s;
}

std::string read_data_flag(const std::string& data) {
  if (data.empty() || data[0] != '@') return data;
  std::string path = data.substr(1);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SetupError("--data: " + path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Counts the request lines of regular-file inputs, for the progress display's total.
/// Gives up (returns 0) as soon as `cancel` is set: the run may end first.
uint64_t count_request_lines(const std::vector<InputFile>& inputs, const std::atomic<bool>& cancel) {
  uint64_t count = 0;
  std::vector<char> buf(1 << 20);
  for (const auto& in : inputs) {
    int fd = ::dup(in.fd);
    if (fd < 0) continue;
    off_t offset = 0;
    bool at_line_start = true, counted_line = false;
    for (;;) {
      if (cancel.load(std::memory_order_relaxed)) {
        ::close(fd);
        return 0;
      }
      ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
      if (n <= 0) break;
      offset += n;
      for (ssize_t i = 0; i < n; ++i) {
        char c = buf[static_cast<size_t>(i)];
        if (c == '\n') {
          at_line_start = true;
          counted_line = false;
        } else if (at_line_start && !counted_line && c != ' ' && c != '\t' && c != '\r') {
          if (c != '#') ++count;
          counted_line = true;
          at_line_start = false;
        }
      }
    }
    ::close(fd);
  }
  return count;
}

/// Transfers that fit in `limit` file descriptors: each may hold a socket and an
/// idle cached connection and, when saving bodies, up to two partial files (the
/// stage starts twice the concurrency); `reserve` covers stdio, the inputs, the
/// state file, the loop, curl's own and directories walked while saving.
size_t concurrency_for_fds(uint64_t limit, size_t inputs, bool saving) {
  uint64_t reserve = 32 + inputs;
  uint64_t per_transfer = saving ? 4 : 2;
  if (limit < reserve + per_transfer) return 1;
  return static_cast<size_t>(std::min<uint64_t>((limit - reserve) / per_transfer, SIZE_MAX));
}

/// --concurrency, lowered (with one warning) to what the descriptor limit allows.
size_t fitting_concurrency(const FetchFlags& f) {
  uint64_t limit = fd_limit();
  size_t fits = concurrency_for_fds(limit, f.inputs.size(), !f.out_dir.empty());
  if (fits >= f.concurrency) return f.concurrency;
  spdlog::warn("only {} file descriptors allowed (ulimit -n): --concurrency lowered from {} to {}", limit,
               f.concurrency, fits);
  return fits;
}

ExitCode run_fetch(const FetchFlags& f) {
  // --- check and convert every flag before anything starts
  if (f.concurrency == 0) throw SetupError("--concurrency must be at least 1");
  if (f.retry < 0) throw SetupError("--retry must be 0 or more");
  if (f.append && f.output == "-") throw SetupError("--append needs --output FILE");
  const size_t concurrency = fitting_concurrency(f);
  FetchStageOptions stage_options;
  stage_options.limits.concurrency = concurrency;
  stage_options.limits.per_host = f.per_host;
  if (!f.rate.empty()) {
    auto r = parse_rate(f.rate);
    if (!r) throw SetupError("--rate: invalid rate '" + f.rate + "' (examples: 50/s, 600/m)");
    stage_options.limits.rate = *r;
  }
  auto backoff = parse_duration_range(f.retry_backoff);
  if (!backoff) throw SetupError("--retry-backoff: expected MIN..MAX such as 250ms..30s, got '" + f.retry_backoff + "'");
  stage_options.limits.retry = RetryPolicy{f.retry, backoff->first, backoff->second};
  stage_options.ordered = f.ordered;
  RequestLinesOptions lines_options;
  if (f.body == "none") lines_options.body_mode = BodyMode::none;
  else if (f.body == "text") lines_options.body_mode = BodyMode::text;
  else if (f.body == "json") lines_options.body_mode = BodyMode::json;
  else throw SetupError("--body: expected none, text or json, got '" + f.body + "'");
  lines_options.insecure = f.insecure;

  RequestDefaults& defaults = lines_options.defaults;
  if (!f.method.empty()) {
    if (auto e = check_method(f.method); !e.empty()) throw SetupError("--method: " + e);
    defaults.method = f.method;
  }
  for (const auto& h : f.headers) {
    if (auto e = check_header(h); !e.empty()) throw SetupError("--header '" + h + "': " + e);
    defaults.headers.push_back(h);
  }
  if (f.data) {
    defaults.body = read_data_flag(*f.data);
    if (f.method.empty()) defaults.method = "POST";
  }

  HttpClientOptions http;
  http.connect_timeout_ms = static_cast<long>(duration_flag("--connect-timeout", f.connect_timeout).count());
  http.timeout_ms = static_cast<long>(duration_flag("--timeout", f.timeout).count());
  http.low_speed_time_s =
      static_cast<long>((duration_flag("--low-speed-time", f.low_speed_time).count() + 999) / 1000);
  if (!f.max_bytes.empty()) http.max_bytes = size_flag("--max-bytes", f.max_bytes);
  else if (lines_options.body_mode != BodyMode::none) http.max_bytes = 64ll << 20;  // bodies held in memory
  http.max_redirects = f.max_redirects;
  http.connection_cache = static_cast<long>(std::max<size_t>(2 * concurrency, 16));
  http.insecure = f.insecure;
  if (!f.cacert.empty()) {
    if (::access(f.cacert.c_str(), R_OK) != 0) throw SetupError("--cacert: " + f.cacert + ": cannot read");
    http.cacert = f.cacert;
  }
  http.user_agent = f.user_agent;
  size_t max_line = static_cast<size_t>(size_flag("--max-line", f.max_line));
  Millis grace = duration_flag("--grace", f.grace);
  std::optional<Millis> deadline;
  if (!f.deadline.empty()) deadline = duration_flag("--deadline", f.deadline);

  // One run at a time per --state, from before the output is opened to the end.
  std::unique_ptr<RunLock> lock;
  if (!f.state.empty()) {
    auto busy = [&](long pid) {
      return fmt::format("--state {} is in use by another afetch ({}); --wait waits for it", f.state,
                         pid ? "pid " + std::to_string(pid) : std::string("pid unknown"));
    };
    auto waiting = [&](long pid) {
      spdlog::info("waiting for {} to finish with --state {}", pid ? "pid " + std::to_string(pid) : "another afetch",
                   f.state);
    };
    lock = std::make_unique<RunLock>(f.state, f.wait, busy, waiting);
  }

  // --- open everything that can fail up front
  std::vector<InputFile> inputs = open_inputs(f.inputs);
  struct CloseInputs {
    std::vector<InputFile>& v;
    ~CloseInputs() { close_inputs(v); }
  } close_guard{inputs};

  asio::io_context io(1);
  BlockingPool pool(4);
  RunControl control(io.get_executor());
  StageContext ctx{io, pool, control, {}};
  for (const auto& in : inputs) ctx.input_names.push_back(in.name);

  std::unique_ptr<FetchState> state;
  if (!f.state.empty()) state = std::make_unique<FetchState>(f.state);
  std::unique_ptr<BodyStore> store;
  if (!f.out_dir.empty()) store = std::make_unique<BodyStore>(f.out_dir, io, pool, state != nullptr);
  if (f.insecure) spdlog::warn("--insecure: TLS certificates are not verified");

  HttpClient client(io, http);
  control.on_abort([&client] { client.abort_all(); });

  FetchStats stats;
  LinesSource source(ctx, inputs, max_line);
  stage_options.filter = state.get();
  RequestLines requests(ctx, lines_options, store.get(), stats);
  FetchStage stage(ctx, stage_options, client, requests);
  JsonlSink sink(ctx, f.output, f.append, state != nullptr);

  bool show_progress = !f.quiet && !f.no_progress && logging::stderr_is_terminal();
  ProgressDisplay progress(io, stats, logging::color_allowed());
  std::atomic<bool> stop_counting{false};
  struct StopCounting {  // set before the pool is joined, however run_fetch leaves
    std::atomic<bool>& flag;
    ~StopCounting() { flag = true; }
  } stop_counting_guard{stop_counting};
  if (show_progress) {
    bool countable = true;
    for (const auto& in : inputs) countable = countable && in.regular;
    if (countable) {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            auto job = [&inputs, &stop_counting] { return count_request_lines(inputs, stop_counting); };
            uint64_t total = co_await run_blocking(pool.pool(), job);
            if (stop_counting) co_return;
            stats.total = total;
            stats.total_known = true;
          },
          fatal_on_exception{});
    }
    progress.start();
  }

  control.watch_signals(grace);
  if (deadline) control.set_deadline(*deadline);

  auto started = std::chrono::steady_clock::now();
  std::exception_ptr failure;
  bool closed_early = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::vector<Stage*> stages{&stage};
        closed_early = co_await run_pipeline(ctx, source, stages, sink, state.get());
      },
      [&](std::exception_ptr e) {
        failure = e;
        stop_counting = true;
        control.finish();
        progress.stop();
        io.stop();
      });
  try {
    io.run();
  } catch (...) {
    end_on_exception(std::current_exception());
  }
  progress.stop();
  if (failure) std::rethrow_exception(failure);

  auto elapsed = std::chrono::steady_clock::now() - started;
  if (!f.quiet && !closed_early) logging::print_line(fetch_summary(stats, elapsed));

  if (closed_early) return ExitCode::ok;
  ExitCode code = ExitCode::ok;
  if (stats.failed > 0) code = worst(code, ExitCode::failures);
  if (stats.input_errors > 0) code = worst(code, ExitCode::usage);
  switch (control.reason()) {
    case StopReason::signal: code = worst(code, ExitCode::interrupted); break;
    case StopReason::deadline: code = worst(code, ExitCode::failures); break;
    default: break;
  }
  return code;
}

}  // namespace

std::function<ExitCode()> setup_fetch_command(CLI::App& app) {
  auto f = std::make_shared<FetchFlags>();
  // A flag given twice: the last one wins, as in most Unix tools (lists still accumulate).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("inputs", f->inputs, "Files of URLs or JSON request objects, one per line; '-' or none: stdin")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("-j,--concurrency", f->concurrency, "Transfers in flight at most")->capture_default_str();
  app.add_option("--per-host", f->per_host, "Transfers in flight per host:port at most (0: no extra limit)")
      ->capture_default_str();
  app.add_option("--rate", f->rate, "Start at most this many requests, e.g. 50/s, 600/m");
  app.add_option("--retry", f->retry, "Retries after the first attempt (connection errors, timeouts, 429, 5xx)")
      ->capture_default_str();
  app.add_option("--retry-backoff", f->retry_backoff, "Backoff bounds MIN..MAX (full jitter; Retry-After honoured up to MAX)")
      ->capture_default_str();
  app.add_flag("--ordered", f->ordered, "Write results in input order (default: as they complete)");
  app.add_option("-o,--out-dir", f->out_dir, "Save response bodies of 2xx responses under DIR (never overwriting)");
  app.add_option("--output", f->output, "Write result lines to FILE instead of stdout");
  app.add_flag("--append", f->append, "Append to --output FILE instead of truncating it");
  app.add_option("--body", f->body, "Embed the body in the result: none, text or json")->capture_default_str();
  app.add_option("--state", f->state, "SQLite file recording finished URLs; a rerun skips them");
  app.add_flag("--wait", f->wait, "If another afetch uses the same --state, wait for it to end (default: exit 75)");
  app.add_option("-X,--method", f->method, "HTTP method for URL lines (default GET, POST with --data)");
  // One value per -H, as in curl: without allow_extra_args(false) CLI11 lets a list
  // option swallow the words after it (`-H 'A: b' urls.txt` took urls.txt as a header).
  app.add_option("-H,--header", f->headers, "Extra header 'Name: value' (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  app.add_option("-d,--data", f->data, "Request body for URL lines (@FILE reads a file)");
  app.add_option("-A,--user-agent", f->user_agent, "User-Agent header")->capture_default_str();
  app.add_option("--connect-timeout", f->connect_timeout, "Connect timeout per attempt")->capture_default_str();
  app.add_option("--timeout", f->timeout, "Whole-transfer timeout per attempt (0: none)")->capture_default_str();
  app.add_option("--low-speed-time", f->low_speed_time, "Abort a transfer that moves no data for this long (0: off)")
      ->capture_default_str();
  app.add_option("--max-bytes", f->max_bytes, "Abort a body larger than SIZE (default: none; 64MiB with --body)");
  app.add_option("--max-redirects", f->max_redirects, "Redirects followed at most")->capture_default_str();
  app.add_flag("-k,--insecure", f->insecure, "Do not verify TLS certificates (marked in every result line)");
  app.add_option("--cacert", f->cacert, "Trust the CA certificates in FILE (PEM)");
  app.add_option("--deadline", f->deadline, "Stop the whole run after this long (exit 1)");
  app.add_option("--grace", f->grace, "After SIGINT/SIGTERM, let work in flight finish this long")->capture_default_str();
  app.add_option("--max-line", f->max_line, "Longest input line accepted")->capture_default_str();
  app.add_flag("-q,--quiet", f->quiet, "No progress display and no summary");
  app.add_flag("--no-progress", f->no_progress, "No progress display (the summary is still printed)");
  return [f] { return run_fetch(*f); };
}

}  // namespace aetl
