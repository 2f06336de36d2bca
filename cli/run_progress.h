#pragma once
#include <memory>
#include <string>

#include "run/run_display.h"

namespace aetl {

/// The one progress display of aetl and afetch, on stderr. On a terminal (with
/// `progress`) one status line, redrawn five times a second:
///  - a run that counts units of work (RunContext::work; afetch's requests): a
///    bar, done/total and percent once the total is known, rate, in flight,
///    errors and ETA;
///  - otherwise (aetl run): records out per part, the sink's rate, in flight,
///    failures, and percent and ETA where the input's size is known
///    (RunContext::input).
/// Log lines erase the status line before printing. At the end (with `summary`,
/// i.e. not -q) the run's summary lines.
class RunProgress final : public RunDisplay {
 public:
  RunProgress(bool progress, bool summary);
  ~RunProgress() override;

  void started(asio::io_context& io, const RunContext& run) override;
  void stopped() override;
  void finished(const std::vector<std::string>& summary) override;

 private:
  struct Impl;
  bool progress_;
  bool summary_;
  std::unique_ptr<Impl> impl_;
};

/// "1:02:03", "4:05" or "12s"; "?" when unknown.
std::string format_eta(double seconds);

}  // namespace aetl
