// A chunk whose records were taken out is read into again (its buffer and line
// table allocated once per lane), unless a long line or a long table of short
// lines grew it: kept, it would hold that much for the rest of the input.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "engine/shutdown.h"
#include "sources/lines/input_reader.h"
#include "sources/lines/limit_budget.h"
#include "sources/lines/open_input.h"

using namespace aetl;

namespace {
std::unique_ptr<LineChunk> chunk_of(ChunkSplitter& s, size_t want, const std::string& data) {
  auto c = std::make_unique<LineChunk>();
  s.begin(*c, want);
  std::memcpy(c->free_space(), data.data(), data.size());
  c->filled += data.size();
  s.cut(*c, false);
  return c;
}
}  // namespace

TEST_CASE("lines: a recycled chunk keeps its buffer, with zeroed padding after the new data", "[lines]") {
  ChunkSplitter s(1 << 20);
  auto c = chunk_of(s, 4096, "{\"a\":1}\n{\"b\":2}\n");
  const char* buffer = c->buffer.get();
  s.begin(*c, 4096);
  CHECK(c->buffer.get() == buffer);  // big enough: used again
  CHECK(c->filled == 0);
  CHECK(c->lines.empty());
  for (size_t i = 0; i < LineChunk::kPadding; ++i) CHECK(c->buffer[c->capacity + i] == 0);
  s.begin(*c, 1 << 20);  // more room wanted than it has: a new buffer
  CHECK(c->allocated >= (1u << 20) + LineChunk::kPadding);
}

TEST_CASE("lines: the reader keeps a used chunk for its next read unless it grew far past the read size", "[lines]") {
  boost::asio::io_context io;
  RunControl control(io.get_executor());
  OpenInput in;
  LimitBudget budget;
  const size_t read_size = 64 * 1024;
  InputReader reader(in, 1 << 24, read_size, control, budget);
  ChunkSplitter s(1 << 24);

  reader.recycle(chunk_of(s, read_size, "{\"a\":1}\n"));
  CHECK(reader.spare.size() == 1);

  auto grown = chunk_of(s, 8 * read_size, "{\"a\":1}\n");  // as after a long carried line
  reader.recycle(std::move(grown));
  CHECK(reader.spare.size() == 1);

  std::string blank(read_size, '\n');  // a long table of short lines
  reader.recycle(chunk_of(s, read_size, blank));
  CHECK(reader.spare.size() == 1);

  for (size_t i = 0; i < 2 * InputReader::kSpareChunks; ++i) reader.recycle(chunk_of(s, read_size, "{}\n"));
  CHECK(reader.spare.size() == InputReader::kSpareChunks);
}
