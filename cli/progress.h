#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"

namespace aetl {

struct FetchStats;

/// Renders one status line for a fetch run at stderr, redrawn a few times a second:
/// done/total (when known), percentage, rate, in flight, errors, ETA. Only meant
/// to be started when stderr is a terminal; log lines clear it before printing.
class ProgressDisplay {
 public:
  ProgressDisplay(asio::io_context& io, const FetchStats& stats, bool color);
  ~ProgressDisplay();
  void start();
  /// Stops redrawing and erases the line.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The summary lines printed at the end of a fetch run (not coloured).
std::string fetch_summary(const FetchStats& stats, std::chrono::duration<double> elapsed);

/// The one status line at the bottom of a terminal, shared by the progress
/// displays: draw() replaces it, clear() erases it (log lines call clear first).
namespace progress_line {
void draw(const std::string& text);
void clear();
}  // namespace progress_line

/// Calls `draw` on the loop five times a second, from start() until stop(): the
/// redraw clock of both progress displays.
class RedrawTimer {
 public:
  RedrawTimer(asio::io_context& io, std::function<void()> draw);
  void start();
  void stop();
  bool running() const { return running_; }

 private:
  void tick();
  asio::steady_timer timer_;
  std::function<void()> draw_;
  bool running_ = false;
};

/// "1:02:03", "4:05" or "12s".
std::string format_eta(double seconds);

}  // namespace aetl
