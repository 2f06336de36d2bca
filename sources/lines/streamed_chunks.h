#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/http/http_types.h"
#include "sources/lines/line_chunks.h"

namespace aetl {

class RunControl;
class Wakeup;

/// Streams an HTTP body into chunks without holding it: a chunk is cut whenever
/// new data completes a line (or an unfinished line outgrows max_line, which is
/// then skipped, not held), and the transfer is paused while enough chunks
/// wait to be worked on. Loop thread: `wake` is notified whenever a chunk is
/// ready; the reader take()s them and calls resume_if_paused() when it wants
/// more. A stopping run fails the transfer.
class StreamedChunks final : public BodyConsumer {
 public:
  StreamedChunks(size_t max_line, Wakeup& wake, const RunControl& control)
      : splitter_(max_line), max_line_(max_line), wake_(wake), control_(control) {}

  Verdict on_data(std::string_view data) override;
  std::string failure_message() const override { return "stopped"; }

  /// The transfer ended: what is left is the last line.
  void finish();
  /// The chunks cut so far, in body order.
  std::vector<std::unique_ptr<LineChunk>> take();
  bool has_ready() const { return !ready_.empty(); }
  void resume_if_paused() {
    if (!paused_) return;
    paused_ = false;
    resume();
  }

 private:
  static constexpr size_t kMinChunk = 64 * 1024;
  static constexpr size_t kHighWater = 1 << 20;

  void cut(bool at_end);
  /// An unfinished line spans calls: the chunk grows (doubling, so each byte is copied O(1) times).
  void grow(size_t more);

  ChunkSplitter splitter_;
  size_t max_line_;
  Wakeup& wake_;
  const RunControl& control_;
  std::unique_ptr<LineChunk> current_;
  std::vector<std::unique_ptr<LineChunk>> ready_;
  size_t ready_bytes_ = 0;
  bool paused_ = false;
};

}  // namespace aetl
