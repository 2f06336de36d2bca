#include "commands/fetch_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/exit_codes.h"
#include "cli/fd_limit.h"
#include "cli/logging.h"
#include "cli/run_progress.h"
#include "commands/fetch_streams.h"
#include "commands/shared_http.h"
#include "engine/duration.h"
#include "engine/setup_error.h"
#include "net/http/http_client.h"
#include "run/pipeline.h"
#include "run/pipeline_runner.h"
#include "run/run_context.h"
#include "run/run_lock.h"
#include "sinks/jsonl.h"
#include "sources/lines.h"
#include "stages/fetch.h"
#include "stages/fetch/fetch_stats.h"
#include "stages/fetch/request_lines.h"

namespace aetl {
namespace {

/// The flags as typed; converted and checked by build().
struct FetchFlags {
  std::vector<std::string> inputs;
  std::string concurrency_text = std::to_string(kDefaultFetchConcurrency);  ///< -j N, or auto
  size_t concurrency = kDefaultFetchConcurrency;
  bool adaptive = false;
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
  StreamFlags streams;
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

/// Counts the request lines of `paths` for the progress display's total, when
/// every one is a regular file (else returns nullopt). Gives up as soon as
/// `cancel` is set: the run may end first.
std::optional<uint64_t> count_request_lines(const std::vector<std::string>& paths, const std::atomic<bool>& cancel) {
  uint64_t count = 0;
  std::vector<char> buf(1 << 20);
  std::vector<std::string> names = paths.empty() ? std::vector<std::string>{"-"} : paths;
  for (const auto& name : names) {
    if (name == "-" || (name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0)) return std::nullopt;
    struct stat st {};  // looked at before opening: a FIFO is not opened a second time
    if (::stat(name.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return std::nullopt;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return std::nullopt;
    }
    bool at_line_start = true, counted_line = false;
    for (;;) {
      if (cancel.load(std::memory_order_relaxed)) {
        ::close(fd);
        return std::nullopt;
      }
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n <= 0) break;
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

/// Counts the request lines on a thread of its own while the run goes on.
class RequestCounter {
 public:
  explicit RequestCounter(const std::vector<std::string>& paths)
      : thread_([this, paths] {
          if (auto n = count_request_lines(paths, cancel_)) {
            total_ = *n;
            known_ = true;
          }
        }) {}
  ~RequestCounter() {
    cancel_ = true;
    thread_.join();
  }
  bool known() const { return known_; }
  uint64_t total() const { return total_; }

 private:
  std::atomic<bool> cancel_{false};
  std::atomic<bool> known_{false};
  std::atomic<uint64_t> total_{0};
  std::thread thread_;
};

/// afetch's closing report: one line of counts, and one of latencies.
std::vector<std::string> fetch_summary(const FetchStats& s, double secs) {
  double rate = secs > 0 ? s.done / secs : 0;
  std::string out = fmt::format(
      "{} fetched in {:.1f} s ({:.0f}/s): {} ok, {} failed, {} retries; 2xx {}, 3xx {}, 4xx {}, 5xx {}, no response {}",
      s.done, secs, rate, s.ok, s.failed, s.retries, s.by_class[2], s.by_class[3], s.by_class[4], s.by_class[5],
      s.by_class[0]);
  if (s.input_errors) out += fmt::format("; {} bad input lines", s.input_errors);
  if (s.skipped_done) out += fmt::format("; {} skipped (done in --state)", s.skipped_done);
  if (s.aborted) out += fmt::format("; {} cut short (left for the next run)", s.aborted);
  if (!s.host_limits.empty()) {
    std::string limits;
    size_t shown = 0;
    for (const auto& [host, n] : s.host_limits) {
      if (shown++ == 5) {
        limits += fmt::format(", ... ({} hosts)", s.host_limits.size());
        break;
      }
      limits += fmt::format("{}{} {}", limits.empty() ? "" : ", ", host, n);
    }
    out += "; -j auto ended at " + limits;
  }
  std::vector<std::string> lines{out};
  if (s.latency.count())
    lines.push_back(fmt::format("latency ms: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f}", s.latency.percentile(0.5),
                                s.latency.percentile(0.9), s.latency.percentile(0.99), s.latency.max()));
  return lines;
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

/// afetch --push: request lines → JSON request objects → the stream.
ExitCode run_push(const FetchFlags& f, const RequestDefaults& defaults, size_t max_line, Millis grace) {
  Pipeline spec;
  spec.name = "afetch-push";
  spec.source.kind = "lines";
  spec.source.build = request_lines_source(f.inputs, max_line);
  spec.stages.push_back(push_stage(defaults));
  spec.sinks = {stream_sink(f.streams, f.streams.push)};
  RunProgress display(!f.quiet && !f.no_progress && logging::stderr_is_terminal(), !f.quiet);
  RunOptions o;
  o.stateless = true;
  o.grace = grace;
  o.display = &display;
  RunContext* ctx = nullptr;  // for the summary, called while the run still exists
  o.prepare = [&ctx](RunContext& run) { ctx = &run; };
  o.summary = [&](double seconds) {
    uint64_t pushed = 0, bad = 0;
    for (const auto& p : ctx->parts) {
      if (p->name == "sink redis") pushed = p->out;
      if (p->name == "push") bad = p->failed;
    }
    std::string line = fmt::format("pushed {} request{} into stream {} in {:.1f} s ({:.0f}/s)", pushed,
                                   pushed == 1 ? "" : "s", f.streams.push, seconds, seconds > 0 ? pushed / seconds : 0);
    if (bad) line += fmt::format("; {} bad input line{}", bad, bad == 1 ? "" : "s");
    return std::vector<std::string>{line};
  };
  RunOutcome outcome = run_pipeline_spec(spec, o);
  if (outcome.closed_early) return ExitCode::ok;
  ExitCode code = ExitCode::ok;
  if (outcome.failed_records) code = worst(code, ExitCode::usage);  // logged with file and line
  else if (outcome.failed) code = worst(code, ExitCode::failures);
  if (outcome.interrupted) code = worst(code, ExitCode::interrupted);
  return code;
}

ExitCode run_fetch(FetchFlags& f) {
  // --- check and convert every flag before anything starts
  if (f.concurrency_text == "auto") {
    f.adaptive = true;
    f.concurrency = kAdaptiveConcurrencyMax;
  } else {
    size_t used = 0;
    long long n = -1;
    try {
      n = std::stoll(f.concurrency_text, &used);
    } catch (const std::exception&) {
    }
    if (used != f.concurrency_text.size() || n < 0)
      throw SetupError("--concurrency: expected a number or auto, got '" + f.concurrency_text + "'");
    f.concurrency = static_cast<size_t>(n);
  }
  if (f.concurrency == 0) throw SetupError("--concurrency must be at least 1");
  if (f.retry < 0) throw SetupError("--retry must be 0 or more");
  if (f.append && f.output == "-") throw SetupError("--append needs --output FILE");
  check_stream_flags(f.streams, !f.inputs.empty(), f.state, f.output, f.append);
  const size_t concurrency = fitting_concurrency(f);
  FetchStageOptions stage_options;
  stage_options.limits.concurrency = concurrency;
  stage_options.limits.adaptive = f.adaptive;
  stage_options.limits.per_host = f.per_host;
  if (!f.rate.empty()) {
    auto r = parse_rate(f.rate);
    if (!r) throw SetupError("--rate: invalid rate '" + f.rate + "' (examples: 50/s, 600/m)");
    stage_options.limits.rate = *r;
  }
  share_rate(f.streams, stage_options.limits);
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

  if (f.streams.pushing()) return run_push(f, defaults, max_line, grace);
  if (f.insecure) spdlog::warn("--insecure: TLS certificates are not verified");

  // --- afetch is the pipeline lines → fetch → jsonl
  FetchStats stats;
  RequestLinesSetup fetch;
  fetch.stage = stage_options;
  fetch.lines = lines_options;
  fetch.out_dir = f.out_dir;
  fetch.ledger = f.state;
  fetch.stats = &stats;
  Pipeline spec;
  spec.name = "afetch";
  const bool worker = f.streams.working();
  if (worker) {
    spec.source = stream_source(f.streams, concurrency);
  } else {
    spec.source.kind = "lines";
    spec.source.build = request_lines_source(f.inputs, max_line);
  }
  spec.stages.push_back({"fetch", "fetch", request_lines_stage(std::move(fetch)), false});
  if (!f.streams.to_stream.empty()) {
    spec.sinks = {stream_sink(f.streams, f.streams.to_stream)};
  } else {
    // Result lines go out as they complete; with --state (or as a worker, whose
    // entries are acknowledged once written) each batch is fsync'd first.
    Pipeline::SinkPart sink;
    sink.kind = "jsonl";
    sink.build = jsonl_file_sink(f.output, f.append, !f.state.empty() || worker);
    sink.common.batching.size = 100000;
    sink.common.batching.bytes = 2 << 20;
    sink.common.batching.linger = std::chrono::milliseconds(20);
    sink.common.retry.max_retries = 0;  // a full disk ends the run at once: --state makes the rerun cheap
    spec.sinks = {std::move(sink)};
  }
  spec.channel_capacity = worker ? 1 : 4;  // a worker holds little it does not work on

  bool show_progress = !f.quiet && !f.no_progress && logging::stderr_is_terminal();
  std::optional<RequestCounter> counter;
  if (show_progress && !worker) counter.emplace(f.inputs);
  RunProgress display(show_progress, !f.quiet);
  RunOptions o;
  o.stateless = true;
  o.grace = grace;
  if (deadline) o.deadline = *deadline;
  o.display = &display;
  o.prepare = [&](RunContext& run) {
    share_http_client(run, http);
    run.work = [&stats, &counter] {
      WorkCounts w;
      w.done = stats.done + stats.input_errors;
      w.in_flight = stats.in_flight;
      w.errors = stats.failed + stats.input_errors;
      if (!stats.host_limits.empty()) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (const auto& [host, n] : stats.host_limits) {
          lo = std::min(lo, n);
          hi = std::max(hi, n);
        }
        w.limits = stats.host_limits.size() == 1 ? fmt::format("limit {}", hi)
                                                 : fmt::format("limits {} hosts {}..{}", stats.host_limits.size(), lo, hi);
      }
      if (counter && counter->known()) {
        w.total_known = true;
        w.total = counter->total() > stats.skipped_done ? counter->total() - stats.skipped_done : 0;
      }
      return w;
    };
  };
  o.summary = [&stats](double seconds) { return fetch_summary(stats, seconds); };
  RunOutcome outcome = run_pipeline_spec(spec, o);

  if (outcome.closed_early) return ExitCode::ok;
  ExitCode code = ExitCode::ok;
  if (stats.failed > 0 || outcome.failed) code = worst(code, ExitCode::failures);
  if (stats.input_errors > 0) code = worst(code, ExitCode::usage);
  if (outcome.interrupted) code = worst(code, ExitCode::interrupted);
  return code;
}

}  // namespace

std::function<ExitCode()> setup_fetch_command(CLI::App& app) {
  auto f = std::make_shared<FetchFlags>();
  // A flag given twice: the last one wins, as in most Unix tools (lists still accumulate).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("inputs", f->inputs, "Files of URLs or JSON request objects, one per line; '-' or none: stdin")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("-j,--concurrency", f->concurrency_text,
                 "Transfers in flight at most, or auto: each host's limit adapts (grows while answers are good and "
                 "quick, ×0.9 on 429, 503, timeouts or rising latency; up to --per-host or 256)")
      ->capture_default_str();
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
  add_stream_flags(app, f->streams);
  return [f] { return run_fetch(*f); };
}

}  // namespace aetl
