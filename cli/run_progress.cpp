#include "cli/run_progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"
#include <spdlog/fmt/fmt.h>

#include "cli/logging.h"
#include "run/checkpoint.h"
#include "run/run_context.h"

namespace aetl {
namespace {

// The status line on screen must be erased before a log line; the logger only
// knows a plain function pointer, so "is a line shown" is the one piece of
// process-wide state here.
bool g_line_shown = false;

// Called by the logger, which already holds the stderr lock: a raw write.
void clear_line() {
  if (!g_line_shown) return;
  const char erase[] = "\r\033[K";
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, erase, sizeof erase - 1);
  g_line_shown = false;
}

void draw_line(const std::string& text) {
  logging::set_progress_clear(&clear_line);
  logging::write_raw("\r\033[K" + text);
  g_line_shown = true;
}

void erase_line() {
  logging::set_progress_clear(nullptr);
  if (g_line_shown) {
    logging::write_raw("\r\033[K");
    g_line_shown = false;
  }
}

std::string count(uint64_t n) {
  if (n >= 10'000'000) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 10'000) return fmt::format("{:.1f}k", n / 1e3);
  return std::to_string(n);
}

std::string per_second(double rate) {
  return rate >= 10'000 ? fmt::format("{:.1f}k/s", rate / 1000) : fmt::format("{:.0f}/s", rate);
}

std::string red_if(bool on, bool color, const std::string& text) {
  return on && color ? "\033[31m" + text + "\033[0m" : text;
}

/// A rate smoothed over windows of at least `window` seconds.
struct SmoothedRate {
  double window;
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  uint64_t at_start = 0;
  bool seen = false;
  double rate = 0;

  void sample(uint64_t value) {
    auto now = std::chrono::steady_clock::now();
    if (!seen) {  // a resumed run starts further on
      at_start = value;
      seen = true;
    }
    double dt = std::chrono::duration<double>(now - since).count();
    if (dt < window && !(rate == 0 && dt >= 0.15)) return;
    double fresh = (value - std::min(value, at_start)) / dt;
    rate = rate == 0 ? fresh : 0.5 * rate + 0.5 * fresh;
    since = now;
    at_start = value;
  }
};

}  // namespace

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  if (s >= 60) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}s", s);
}

struct RunProgress::Impl {
  Impl(asio::io_context& io, const RunContext& r) : timer(io), run(r), color(logging::color_allowed()) {}
  asio::steady_timer timer;
  bool running = false;
  const RunContext& run;
  bool color;
  SmoothedRate records{0.5};
  SmoothedRate bytes{0.5};
  SmoothedRate work{2.0};

  void tick() {
    timer.expires_after(std::chrono::milliseconds(200));
    timer.async_wait([this](const asio::error_code& ec) {
      if (ec || !running) return;
      draw_line(run.work ? work_line(run.work()) : parts_line());
      tick();
    });
  }

  /// afetch: [#####...] 1200/5000  24%  3.1k/s  in flight 64  errors 2  ETA 1s
  std::string work_line(const WorkCounts& w) {
    work.sample(w.done);
    std::string errors = red_if(w.errors > 0, color, "errors " + std::to_string(w.errors));
    if (!w.limits.empty()) errors = w.limits + "  " + errors;
    if (!w.total_known)
      return fmt::format("{} done  {}  in flight {}  {}", w.done, per_second(work.rate), w.in_flight, errors);
    double frac = w.total ? std::min(1.0, static_cast<double>(w.done) / static_cast<double>(w.total)) : 1.0;
    const int width = 24;
    int filled = static_cast<int>(frac * width);
    std::string bar = std::string(static_cast<size_t>(filled), '#');
    if (color) bar = "\033[32m" + bar + "\033[0m";
    bar += std::string(static_cast<size_t>(width - filled), '.');
    double eta = work.rate > 0 ? static_cast<double>(w.total - std::min(w.total, w.done)) / work.rate : NAN;
    return fmt::format("[{}] {}/{} {:3.0f}%  {}  in flight {}  {}  ETA {}", bar, w.done, w.total, frac * 100,
                       per_second(work.rate), w.in_flight, errors, format_eta(eta));
  }

  /// aetl run: lines 12.0k  filter#1 11.9k  sink jsonl 11.9k  | 40.2k/s  in flight 0  failed 0  42%  ETA 3s
  std::string parts_line() {
    std::string line;
    uint64_t failed = 0, in_flight = 0, sink_out = 0;
    for (const auto& p : run.parts) {
      failed += p->failed;
      in_flight += p->in_flight;
      if (p->name.rfind("sink", 0) == 0) sink_out = p->out;
      line += p->name + " " + count(p->out) + "  ";
    }
    records.sample(sink_out);
    uint64_t handled = run.tracker.handled_bytes();
    bytes.sample(handled);
    line += fmt::format("| {}/s  in flight {}  ", count(static_cast<uint64_t>(records.rate)), count(in_flight));
    for (const auto& p : run.parts)  // concurrency: auto
      if (!p->host_limits.empty()) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (const auto& [host, n] : p->host_limits) {
          lo = std::min(lo, n);
          hi = std::max(hi, n);
        }
        line += p->host_limits.size() == 1 ? fmt::format("limit {}  ", hi) : fmt::format("limits {}..{}  ", lo, hi);
      }
    line += red_if(failed > 0, color, "failed " + count(failed));
    if (run.input.known && run.input.total > 0) {
      uint64_t done = std::min(handled, run.input.total);
      line += fmt::format("  {:.0f}%", 100.0 * static_cast<double>(done) / static_cast<double>(run.input.total));
      if (bytes.rate > 0 && done < run.input.total)
        line += "  ETA " + format_eta(static_cast<double>(run.input.total - done) / bytes.rate);
    }
    return line;
  }
};

RunProgress::RunProgress(bool progress, bool summary) : progress_(progress), summary_(summary) {}

RunProgress::~RunProgress() {
  if (impl_) erase_line();
}

void RunProgress::started(asio::io_context& io, const RunContext& run) {
  if (!progress_) return;
  impl_ = std::make_unique<Impl>(io, run);
  impl_->running = true;
  impl_->tick();
}

void RunProgress::stopped() {
  if (!impl_) return;
  impl_->running = false;
  impl_->timer.cancel();
}

void RunProgress::finished(const std::vector<std::string>& summary) {
  if (impl_) {
    stopped();
    erase_line();
    impl_.reset();  // its timer belongs to this run's loop (a schedule runs the next fire on another)
  }
  if (!summary_) return;
  for (const auto& line : summary) logging::print_line(line);
}

}  // namespace aetl
