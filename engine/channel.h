#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "engine/record.h"

namespace aetl {

/// A bounded channel of batches between two stages: the backpressure of the engine.
/// The end of the stream is an empty batch (close() would drop buffered batches).
using BatchChannel = asio::experimental::channel<void(asio::error_code, Batch)>;

/// Suspends while the channel is full.
inline asio::awaitable<void> send_batch(BatchChannel& ch, Batch batch) {
  co_await ch.async_send(asio::error_code{}, std::move(batch), asio::use_awaitable);
}

/// Suspends until a batch arrives; an empty batch means the stream has ended.
inline asio::awaitable<Batch> receive_batch(BatchChannel& ch) {
  co_return co_await ch.async_receive(asio::use_awaitable);
}

}  // namespace aetl
