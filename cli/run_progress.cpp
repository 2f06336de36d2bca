#include "cli/run_progress.h"

#include <unistd.h>

#include <algorithm>

#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"
#include <spdlog/fmt/fmt.h>

#include "cli/logging.h"
#include "cli/progress.h"
#include "run/checkpoint.h"
#include "run/run_context.h"

namespace aetl {
namespace {

std::string count(uint64_t n) {
  if (n >= 10'000'000) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 10'000) return fmt::format("{:.1f}k", n / 1e3);
  return std::to_string(n);
}

}  // namespace

struct RunProgress::Impl {
  Impl(asio::io_context& io, const RunContext& r) : redraw(io, [this] { draw(); }), run(r), color(logging::color_allowed()) {}
  RedrawTimer redraw;
  const RunContext& run;
  bool color;
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  uint64_t last_out = 0;
  double rate = 0;
  uint64_t last_bytes = 0;
  bool bytes_seen = false;
  double byte_rate = 0;

  void draw() {
    if (run.parts.empty()) return;
    std::string line;
    uint64_t failed = 0, in_flight = 0, sink_out = 0;
    for (const auto& p : run.parts) {
      failed += p->failed;
      in_flight += p->in_flight;
      if (p->name.rfind("sink", 0) == 0) sink_out = p->out;
      line += p->name + " " + count(p->out) + "  ";
    }
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - last).count();
    if (dt >= 0.5 || (rate == 0 && dt >= 0.15)) {
      double fresh = (sink_out - last_out) / dt;
      rate = rate == 0 ? fresh : 0.5 * rate + 0.5 * fresh;
      uint64_t handled = run.tracker.handled_bytes();
      if (!bytes_seen) last_bytes = handled;  // a resumed run starts further on
      bytes_seen = true;
      double fresh_bytes = (handled - std::min(handled, last_bytes)) / dt;
      byte_rate = byte_rate == 0 ? fresh_bytes : 0.5 * byte_rate + 0.5 * fresh_bytes;
      last = now;
      last_out = sink_out;
      last_bytes = handled;
    }
    line += fmt::format("| {}/s  in flight {}  ", count(static_cast<uint64_t>(rate)), count(in_flight));
    if (failed && color) line += "\033[31m";
    line += "failed " + count(failed);
    if (failed && color) line += "\033[0m";
    if (run.input.known && run.input.total > 0) {
      uint64_t done = std::min(run.tracker.handled_bytes(), run.input.total);
      line += fmt::format("  {:.0f}%", 100.0 * static_cast<double>(done) / static_cast<double>(run.input.total));
      if (byte_rate > 0 && done < run.input.total)
        line += "  ETA " + format_eta(static_cast<double>(run.input.total - done) / byte_rate);
    }
    progress_line::draw(line);
  }
};

RunProgress::RunProgress(bool progress, bool summary) : progress_(progress), summary_(summary) {}

RunProgress::~RunProgress() = default;

void RunProgress::started(asio::io_context& io, const RunContext& run) {
  if (!progress_) return;
  impl_ = std::make_unique<Impl>(io, run);
  impl_->redraw.start();
}

void RunProgress::stopped() {
  if (!impl_) return;
  impl_->redraw.stop();
}

void RunProgress::finished(const std::vector<std::string>& summary) {
  if (impl_) {
    stopped();
    progress_line::clear();
  }
  if (!summary_) return;
  for (const auto& line : summary) logging::print_line(line);
}

}  // namespace aetl
