#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "sources/lines/csv_decoding.h"
#include "sources/lines/line_chunks.h"

namespace aetl {

class RunControl;
struct ChunkWork;
struct LimitBudget;
struct OpenInput;

/// The one-at-a-time part of reading a file, done by the lane jobs themselves:
/// the job whose ticket has come reads and cuts the next chunk (csv: decodes it,
/// in order) and then works on it in parallel with the others. No thread hop
/// per chunk, and the reading never waits behind the lanes for a CPU.
/// Tickets are taken 0, 1, 2, ... and each is read exactly once, in that order;
/// once the input is read to the end (or the run stops, the --limit budget is
/// spent, or a read fails) `finished` is set and later tickets read nothing.
struct InputReader {
  InputReader(OpenInput& i, size_t max_line, size_t chunk, const RunControl& c, LimitBudget& b)
      : in(i), splitter(max_line), chunk_size(chunk), control(c), budget(b) {}
  OpenInput& in;  // opened; the reader does not close it
  ChunkSplitter splitter;
  std::unique_ptr<CsvDecoding> csv;  // csv: the input's decoding, in order
  size_t chunk_size;
  const RunControl& control;
  LimitBudget& budget;
  std::atomic<bool> finished{false};  // read to the end (or stopped, or failed): later tickets read nothing

  std::mutex mu;
  std::condition_variable cv;
  uint64_t turn = 0;
  /// Chunks whose records have been taken out, for the next reads: a chunk's
  /// buffer and line table are allocated once per lane, not once per read (fresh
  /// buffers of this size are faulted in anew each time). At most kSpareChunks.
  /// Its own lock: `mu` is held through a whole read.
  std::mutex spare_mu;
  std::vector<std::unique_ptr<LineChunk>> spare;
  static constexpr size_t kSpareChunks = 8;

  /// Pool thread: a chunk whose records are all copied out, to be read into again.
  void recycle(std::unique_ptr<LineChunk> chunk);

  /// Pool thread: waits for `ticket`'s turn and reads one chunk into `work`
  /// (json/text: its chunk; csv: its decoded records). A read error is thrown
  /// (after `finished` is set); the next ticket's turn comes however this ends.
  void read(uint64_t ticket, ChunkWork& work);
};

}  // namespace aetl
