#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/record.h"
#include "run/checkpoint.h"
#include "run/dead_letters.h"
#include "run/ordered_lanes.h"
#include "run/pool_stage.h"
#include "run/record_step.h"
#include "sources/lines/line_chunks.h"

namespace aetl {

class RecordDecoder;
class StepChain;
struct InputReader;

/// The message of a line over max_line (its dead letter says it).
std::string too_long_message(size_t max_line);

/// One chunk's way through the `lines` source, on a lane: its lines decoded into
/// records (json and text here; csv in input order before, by CsvDecoding), run
/// through the record steps the source adopted, and the survivors copied out.
/// Handed on in input order. A file's chunk is read by the job itself (in ticket
/// order, through `reader`); a streamed body's chunk is cut before the job starts.
/// What the job made is for the source to hand on, on the loop: `out` goes on,
/// `failed` and `stepped.failed` go to the dead letter, and `handled`,
/// `stepped.dropped` and `ack_ranges` are acked (json/text: the lines that
/// neither go on nor fail are acked as runs of lines, not one by one).
struct ChunkWork final : OrderedLanes::Job {
  // Set before the job runs.
  std::shared_ptr<InputReader> reader;  // files: the job reads its own chunk, in ticket order
  uint64_t ticket = 0;
  std::unique_ptr<LineChunk> chunk;  // json/text: the lines to decode
  const InputMark* mark = nullptr;
  uint32_t index = 0;
  size_t max_line = 0;
  bool raw = false;  // request lines: passed on undecoded
  std::vector<std::unique_ptr<RecordDecoder>>* decoders = nullptr;  // one per lane
  const StepChain* steps = nullptr;
  std::vector<StepRecord> records;  // csv: decoded already
  uint64_t lines = 0;               // input lines the chunk covered
  // What the job made.
  uint64_t decoded = 0;             // records the lines made
  std::vector<Position> handled;    // blank lines, the csv header, lines inside a csv record
  std::vector<FailedRecord> failed; // malformed lines
  StageOutput stepped;              // what the steps did
  Batch out;
  std::vector<InputMark::Range> ack_ranges;  // json/text: lines handled in the job
  std::string rows;        // what a sink's row step wrote for the records
  uint64_t job_ticks = 0;  // cpu_ticks() the whole job took (the steps' share of its time)
  double waited = 0;       // seconds spent waiting for the reading turn or for input

  /// Pool thread: reads the chunk (files) and works on it.
  void work(size_t lane) override;

 private:
  void process(size_t lane);
  /// json/text: every line of the chunk is handled here except the records that
  /// go on and the failures (acked once the dead letter has them), so the rest
  /// is acked as runs of lines rather than one by one on the loop thread.
  void collect_ack_ranges();
  /// Request lines: every line that is not blank goes on as written.
  void pass_raw_lines();
  /// Decodes the chunk's lines; each record goes through the steps (if any) at
  /// once, the first reading the parse the check of the line made (no second parse,
  /// no second pass).
  void decode_lines(RecordDecoder& decoder, size_t lane);
};

}  // namespace aetl
