#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/record_decoder.h"
#include "run/checkpoint.h"

namespace aetl {

struct ChunkWork;
struct LineChunk;

/// CSV lines become records in input order, as they are cut: a quoted field may
/// span lines, and the header row is state, so one CsvDecoding follows one input
/// from its first chunk to its last, one chunk at a time. A record spanning lines
/// carries the position of its first line; the lines after it are handled with
/// it. Lines a resumed run did already (`mark`) make no record. An error in the
/// header row fails the input (std::runtime_error), rather than the next row
/// becoming the keys; an error in another row is a dead letter.
struct CsvDecoding {
  CsvDecoding(const DecoderOptions& options, const InputMark* m, uint32_t i, size_t ml, const std::string& n)
      : decoder(options), mark(m), index(i), max_line(ml), name(n) {}
  RecordDecoder decoder;
  const InputMark* mark;
  uint32_t index;
  size_t max_line;
  std::string name;
  uint64_t first_line = 0;  // the first line of the record being assembled

  /// Decodes the chunk's lines into `work`'s records, failures and handled lines.
  void decode(const LineChunk& chunk, ChunkWork& work);
  /// The end of the input: a record still open is an error.
  void finish(ChunkWork& work);
};

}  // namespace aetl
