#include "engine/engine.h"

#include <memory>

#include "engine/shutdown.h"
#include "engine/task_group.h"

namespace aetl {
namespace {

asio::awaitable<void> sink_loop(StageContext& ctx, BatchChannel& in, Sink& sink, CommitListener* listener,
                                bool& closed_early) {
  co_await sink.open();
  for (;;) {
    Batch batch = co_await receive_batch(in);
    if (batch.empty()) break;
    if (closed_early) continue;  // drain so the stages can wind down
    bool written = co_await sink.write(batch);  // not inside the `if`: GCC 12 miscompiles that
    if (!written && ctx.control.aborted()) continue;  // given up on a stuck reader: not written, not committed
    if (!written) {
      closed_early = true;
      ctx.control.request_stop(StopReason::downstream_closed);
      ctx.control.request_abort();
      continue;
    }
    if (listener) co_await listener->committed(batch);
  }
  co_await sink.close();
}

}  // namespace

asio::awaitable<bool> run_pipeline(StageContext& ctx, Source& source, const std::vector<Stage*>& stages, Sink& sink,
                                   CommitListener* listener, size_t channel_capacity) {
  bool closed_early = false;
  Drain drain = [&](BatchChannel& in) { return sink_loop(ctx, in, sink, listener, closed_early); };
  co_await run_chain(ctx, source, stages, drain, channel_capacity);
  co_return closed_early;
}

asio::awaitable<void> run_chain(StageContext& ctx, Source& source, const std::vector<Stage*>& stages, Drain drain,
                                size_t channel_capacity) {
  auto ex = ctx.io.get_executor();
  std::vector<std::unique_ptr<BatchChannel>> channels;
  for (size_t i = 0; i <= stages.size(); ++i) channels.push_back(std::make_unique<BatchChannel>(ex, channel_capacity));

  TaskGroup parts(ex);
  std::exception_ptr first_error;
  // Wrap each part so the first failure stops everything: abort the work in
  // flight and cancel and close the channels, so every pending and later
  // send/receive fails.
  auto guarded = [&](asio::awaitable<void> part) -> asio::awaitable<void> {
    try {
      co_await std::move(part);
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
      ctx.control.request_abort();
      // cancel() first: in Asio 1.22 close() alone leaves a send already waiting on
      // a full channel stuck for ever (and cancel() after close() would complete it
      // as if delivered).
      for (auto& ch : channels) {
        ch->cancel();
        ch->close();
      }
    }
  };
  parts.spawn(guarded(source.run(*channels[0])));
  for (size_t i = 0; i < stages.size(); ++i) parts.spawn(guarded(stages[i]->run(*channels[i], *channels[i + 1])));
  parts.spawn(guarded(drain(*channels.back())));
  co_await parts.wait_all();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace aetl
