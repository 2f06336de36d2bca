#pragma once
#include <memory>

#include "run/run_display.h"

namespace aetl {

/// What `aetl run` shows on stderr: on a terminal (with `progress`) a line of
/// records in/out per part, the sink's rate, records in flight and failures,
/// redrawn five times a second; at the end (with `summary`, i.e. not -q) the
/// run's summary.
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

}  // namespace aetl
