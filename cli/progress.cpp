#include "cli/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"

#include "cli/logging.h"
#include "stages/fetch/fetch_stats.h"

namespace aetl {
namespace {

// The progress line currently on screen must be erased before a log line; the
// logger only knows a plain function pointer, so the "is a line shown" flag is
// the one piece of process-wide state here.
bool g_line_shown = false;

// Called by the logger, which already holds the stderr lock: a raw write.
void clear_line() {
  if (!g_line_shown) return;
  const char erase[] = "\r\033[K";
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, erase, sizeof erase - 1);
  g_line_shown = false;
}

std::string human_rate(double per_second) {
  char buf[32];
  if (per_second >= 10'000)
    std::snprintf(buf, sizeof buf, "%.1fk/s", per_second / 1000);
  else
    std::snprintf(buf, sizeof buf, "%.0f/s", per_second);
  return buf;
}

}  // namespace

namespace progress_line {
void draw(const std::string& text) {
  logging::set_progress_clear(&clear_line);
  logging::write_raw("\r\033[K" + text);
  g_line_shown = true;
}
void clear() {
  logging::set_progress_clear(nullptr);
  if (g_line_shown) {
    logging::write_raw("\r\033[K");
    g_line_shown = false;
  }
}
}  // namespace progress_line

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

struct ProgressDisplay::Impl {
  Impl(asio::io_context& io, const FetchStats& s, bool c) : redraw(io, [this] { draw(); }), stats(s), color(c) {}
  RedrawTimer redraw;
  const FetchStats& stats;
  bool color;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // rate over a sliding window of about two seconds
  std::chrono::steady_clock::time_point window_start = started;
  uint64_t window_done = 0;
  double rate = 0;

  void draw() {
    auto now = std::chrono::steady_clock::now();
    uint64_t finished = stats.done + stats.input_errors;
    double window = std::chrono::duration<double>(now - window_start).count();
    if (window >= 2.0 || rate == 0) {
      double fresh = window > 0 ? (finished - window_done) / window : 0;
      rate = rate == 0 ? fresh : 0.5 * rate + 0.5 * fresh;
      if (window >= 2.0) {
        window_start = now;
        window_done = finished;
      }
    }
    uint64_t errors = stats.failed + stats.input_errors;
    std::string line = "\r\033[K";
    char buf[200];
    if (stats.total_known) {
      uint64_t total = stats.total > stats.skipped_done ? stats.total - stats.skipped_done : 0;
      double frac = total ? std::min(1.0, static_cast<double>(finished) / total) : 1.0;
      int width = 24, filled = static_cast<int>(frac * width);
      line += '[';
      if (color) line += "\033[32m";
      line += std::string(static_cast<size_t>(filled), '#');
      if (color) line += "\033[0m";
      line += std::string(static_cast<size_t>(width - filled), '.');
      line += ']';
      double eta = rate > 0 ? (total - std::min(total, finished)) / rate : NAN;
      std::snprintf(buf, sizeof buf, " %llu/%llu %3.0f%%  %s  in flight %llu  ", (unsigned long long)finished,
                    (unsigned long long)total, frac * 100, human_rate(rate).c_str(),
                    (unsigned long long)stats.in_flight);
      line += buf;
      if (errors && color) line += "\033[31m";
      std::snprintf(buf, sizeof buf, "errors %llu", (unsigned long long)errors);
      line += buf;
      if (errors && color) line += "\033[0m";
      line += "  ETA " + format_eta(eta);
    } else {
      std::snprintf(buf, sizeof buf, "%llu done  %s  in flight %llu  errors %llu", (unsigned long long)finished,
                    human_rate(rate).c_str(), (unsigned long long)stats.in_flight, (unsigned long long)errors);
      line += buf;
    }
    logging::write_raw(line);
    g_line_shown = true;
  }
};

ProgressDisplay::ProgressDisplay(asio::io_context& io, const FetchStats& stats, bool color)
    : impl_(std::make_unique<Impl>(io, stats, color)) {}

ProgressDisplay::~ProgressDisplay() { stop(); }

void ProgressDisplay::start() {
  logging::set_progress_clear(&clear_line);
  impl_->redraw.start();
}

void ProgressDisplay::stop() {
  if (!impl_->redraw.running()) return;
  impl_->redraw.stop();
  progress_line::clear();
}

RedrawTimer::RedrawTimer(asio::io_context& io, std::function<void()> draw) : timer_(io), draw_(std::move(draw)) {}

void RedrawTimer::start() {
  running_ = true;
  tick();
}

void RedrawTimer::stop() {
  running_ = false;
  timer_.cancel();
}

void RedrawTimer::tick() {
  timer_.expires_after(std::chrono::milliseconds(200));
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || !running_) return;
    draw_();
    tick();
  });
}

std::string fetch_summary(const FetchStats& s, std::chrono::duration<double> elapsed) {
  double secs = elapsed.count();
  double rate = secs > 0 ? s.done / secs : 0;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%llu fetched in %.1f s (%.0f/s): %llu ok, %llu failed, %llu retries; "
                "2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu, no response %llu",
                (unsigned long long)s.done, secs, rate, (unsigned long long)s.ok, (unsigned long long)s.failed,
                (unsigned long long)s.retries, (unsigned long long)s.by_class[2], (unsigned long long)s.by_class[3],
                (unsigned long long)s.by_class[4], (unsigned long long)s.by_class[5],
                (unsigned long long)s.by_class[0]);
  std::string out = buf;
  if (s.input_errors) out += "; " + std::to_string(s.input_errors) + " bad input lines";
  if (s.skipped_done) out += "; " + std::to_string(s.skipped_done) + " skipped (done in --state)";
  if (s.aborted) out += "; " + std::to_string(s.aborted) + " cut short (left for the next run)";
  if (s.latency.count()) {
    std::snprintf(buf, sizeof buf, "\nlatency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f", s.latency.percentile(0.5),
                  s.latency.percentile(0.9), s.latency.percentile(0.99), s.latency.max());
    out += buf;
  }
  return out;
}

}  // namespace aetl
