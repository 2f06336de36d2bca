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
  /// The sinks this record goes to, one bit per sink in pipeline order (set by a
  /// `route` step); 0: every sink.
  uint32_t routes = 0;
  /// The sink's encoding of `data`, made ahead in the record-step lanes by the
  /// sink's row step (empty: the sink encodes `data` itself when it writes).
  SharedSlice row;
  /// Which of the records split from one input this is (split_part()): 0 for an
  /// input's first or only record. Kept through later stages, so that `pos` and
  /// `part` name a record the same way on every delivery of its input.
  uint64_t part = 0;
};

/// The part number of output `k` (0-based) of a record of part `parent` that a
/// stage split into several (a record that stays one keeps its number): it
/// depends only on the parent's number and on k, so the parts of a split of a
/// split differ too. Not 0.
inline uint64_t split_part(uint64_t parent, size_t k) {
  uint64_t z = parent * 0x9e3779b97f4a7c15ull + k + 1;  // splitmix64 of (parent, k)
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z ? z : 1;
}

/// Records travel between stages in batches; an empty batch marks the end of a stream.
using Batch = std::vector<Record>;

}  // namespace aetl
