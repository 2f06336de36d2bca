#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aetl {

/// Where a record came from: which input, which line, and the byte offset just
/// past it. Carried through every stage so sinks can acknowledge positions.
struct Position {
  uint32_t source = 0;      ///< index of the input (file) in the source's list
  uint64_t line = 0;        ///< 1-based line number within that input
  uint64_t end_offset = 0;  ///< byte offset just past the line's terminator
};

/// How a record ended up, for the summary, the exit code and the resume state.
enum class Outcome : uint8_t {
  pending,       ///< not processed yet (input records)
  ok,            ///< processed successfully
  failed,        ///< failed for good (e.g. HTTP 404): not retried on a resumed run
  failed_retry,  ///< failed on something transient (timeouts, 5xx): a resumed run tries again
  input_error,   ///< the input line itself was malformed
};

/// A record's piece of a buffer shared by the records made in one job (one
/// allocation for thousands of small strings, freed with the last of them).
struct SharedSlice {
  std::shared_ptr<const std::string> buffer;
  uint32_t at = 0;
  uint32_t size = 0;
  bool empty() const { return size == 0; }
  std::string_view view() const { return buffer ? std::string_view(*buffer).substr(at, size) : std::string_view(); }
};

/// One record in flight. `data` is the payload: a raw input line straight from a
/// line reader, or one JSON object (no newline) after a stage has produced it.
struct Record {
  std::string data;
  Position pos;
  Outcome outcome = Outcome::pending;
  /// The sink's encoding of `data`, made ahead in the record-step lanes by the
  /// sink's row step (empty: the sink encodes `data` itself when it writes).
  SharedSlice row;
};

/// Records travel between stages in batches; an empty batch marks the end of a stream.
using Batch = std::vector<Record>;

}  // namespace aetl
