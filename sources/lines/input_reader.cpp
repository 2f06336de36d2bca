#include "sources/lines/input_reader.h"

#include <chrono>

#include "engine/shutdown.h"
#include "sources/lines/chunk_work.h"
#include "sources/lines/limit_budget.h"
#include "sources/lines/open_input.h"

namespace aetl {

void InputReader::read(uint64_t ticket, ChunkWork& work) {
  std::unique_lock lock(mu);
  auto wait_started = std::chrono::steady_clock::now();
  cv.wait(lock, [&] { return turn == ticket; });
  work.waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_started).count();
  struct Next {  // the next ticket's turn comes however this one ends
    InputReader& r;
    ~Next() {
      ++r.turn;
      r.cv.notify_all();
    }
  } next{*this};
  if (finished.load()) return;
  if (control.stopping()) {  // no more chunks once a stop was asked for
    finished = true;
    return;
  }
  try {
    std::unique_ptr<LineChunk> chunk;
    {
      std::lock_guard spare_lock(spare_mu);
      if (!spare.empty()) {
        chunk = std::move(spare.back());
        spare.pop_back();
      }
    }
    if (!chunk) chunk = std::make_unique<LineChunk>();
    splitter.begin(*chunk, chunk_size);
    auto read_started = std::chrono::steady_clock::now();
    ssize_t n = read_chunk(in, chunk->free_space(), chunk->room(), control);
    if (!in.regular)  // a pipe or terminal: the time waiting for input is not work
      work.waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - read_started).count();
    if (n < 0) {  // stopping
      finished = true;
      return;
    }
    chunk->filled += static_cast<size_t>(n);
    splitter.cut(*chunk, n == 0);
    if (csv) {
      csv->decode(*chunk, work);
      if (n == 0) csv->finish(work);
    }
    if (!budget.take(chunk.get(), work, csv != nullptr) || n == 0) finished = true;
    work.lines += chunk->lines.size();
    if (!csv) work.chunk = std::move(chunk);
  } catch (...) {
    finished = true;
    throw;
  }
}

void InputReader::recycle(std::unique_ptr<LineChunk> chunk) {
  // One grown by a long line (or holding a long table of short ones) is freed:
  // kept, it would hold that much for the rest of the input.
  if (chunk->allocated > 2 * (chunk_size + LineChunk::kPadding) || chunk->lines.capacity() > chunk_size / 8) return;
  std::lock_guard lock(spare_mu);
  if (spare.size() < kSpareChunks) spare.push_back(std::move(chunk));
}

}  // namespace aetl
