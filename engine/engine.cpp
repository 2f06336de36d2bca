#include "engine/engine.h"

#include <memory>
#include <vector>

#include "engine/shutdown.h"
#include "engine/task_group.h"

namespace aetl {
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
