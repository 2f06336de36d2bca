#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/channel.h"
#include "engine/stage_context.h"

namespace aetl {

class StepChain;

/// Produces batches until its input ends or the run stops; then sends the end marker.
class Source {
 public:
  virtual ~Source() = default;
  virtual asio::awaitable<void> run(BatchChannel& out) = 0;
  /// Offered the record steps right behind it (pipelines). A source that runs
  /// them in its own jobs returns true: records then cross no thread between
  /// reading and the steps, and only the ones that come out are copied.
  virtual bool adopt_steps(const StepChain&) { return false; }
};

/// Turns batches into batches; forwards the end marker once its input ended and
/// its own work is done. Keeps reading (and discarding) input after a stop, so
/// the stages before it can finish.
class Stage {
 public:
  virtual ~Stage() = default;
  virtual asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) = 0;
  /// A stage made of record steps (run/step_chain.h) returns them, so the plan
  /// can join it with its neighbours or run it in the source's lanes; others: nullptr.
  virtual StepChain* step_chain() { return nullptr; }
};

/// The end of a chain: consumes the last channel until the end marker.
using Drain = std::function<asio::awaitable<void>(BatchChannel& in)>;

/// Runs source → stages → drain on the context's loop, joined by bounded channels
/// of `channel_capacity` batches (the runner's drain feeds a SinkDriver). Every
/// part is awaited; the first exception aborts the run, cancels and closes the
/// channels, and is rethrown once all parts ended.
asio::awaitable<void> run_chain(StageContext& ctx, Source& source, const std::vector<Stage*>& stages, Drain drain,
                                size_t channel_capacity = 4);

}  // namespace aetl
