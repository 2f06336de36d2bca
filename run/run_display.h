#pragma once
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

namespace aetl {

struct RunContext;

/// What a person sees of a run, supplied by the command (cli/ draws it on
/// stderr), so the engine itself prints nothing. Called on the loop's thread.
class RunDisplay {
 public:
  virtual ~RunDisplay() = default;
  /// The run is under way: `run`'s parts and counters may be read from the loop
  /// until stopped().
  virtual void started(asio::io_context& io, const RunContext& run) = 0;
  /// The loop is ending: no more reads of the run's counters.
  virtual void stopped() = 0;
  /// The run is over: `summary` is its closing report, a line each.
  virtual void finished(const std::vector<std::string>& summary) = 0;
};

}  // namespace aetl
