#include "sources/lines/chunk_work.h"

#include <algorithm>
#include <string_view>

#include "engine/record_decoder.h"
#include "run/cpu_ticks.h"
#include "run/step_chain.h"
#include "sources/lines/input_reader.h"

namespace aetl {

std::string too_long_message(size_t max_line) {
  return "line longer than max_line (" + std::to_string(max_line) + " bytes)";
}

void ChunkWork::work(size_t lane) {
  uint64_t started = cpu_ticks();
  if (reader) reader->read(ticket, *this);
  if (!reader || chunk || !records.empty() || !failed.empty() || !handled.empty()) process(lane);
  job_ticks = cpu_ticks() - started;
}

void ChunkWork::process(size_t lane) {
  if (raw) {
    if (chunk) pass_raw_lines();
    return;
  }
  if (steps) steps->tally_for(stepped);
  if (chunk) {
    decode_lines(*(*decoders)[lane], lane);  // the steps run as each line is decoded
  } else {
    decoded = records.size();
    if (steps) {
      for (auto& r : records) r.rows = &rows;
      steps->run(lane, records, stepped);
    }
  }
  take_records(records, out, &rows);
  if (chunk) collect_ack_ranges();
  // The records pointed into it: given back (or freed) here, off the loop.
  if (chunk && reader) reader->recycle(std::move(chunk));
  chunk.reset();
}

void ChunkWork::collect_ack_ranges() {
  std::vector<uint64_t> held;
  held.reserve(out.size() + failed.size() + stepped.failed.size());
  for (const auto& r : out) held.push_back(r.pos.line);
  for (const auto& f : failed) held.push_back(f.record.pos.line);
  for (const auto& f : stepped.failed) held.push_back(f.record.pos.line);
  std::sort(held.begin(), held.end());
  size_t h = 0;
  bool open = false;
  InputMark::Range run;
  for (const auto& ref : chunk->lines) {
    while (h < held.size() && held[h] < ref.number) ++h;
    if (h < held.size() && held[h] == ref.number) {
      if (open) ack_ranges.push_back(run);
      open = false;
      continue;
    }
    if (!open) run.first = ref.number;
    run.last = ref.number;
    run.end_offset = ref.end_offset;
    open = true;
  }
  if (open) ack_ranges.push_back(run);
  handled.clear();
  stepped.dropped.clear();
}

void ChunkWork::pass_raw_lines() {
  out.reserve(chunk->lines.size());
  for (const auto& ref : chunk->lines) {
    std::string_view line = chunk->text(ref);
    if (!ref.too_long && line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    Record r;
    r.data.assign(line);
    r.pos = Position{index, ref.number, ref.end_offset};
    if (ref.too_long) r.outcome = Outcome::input_error;
    out.push_back(std::move(r));
  }
  decoded = out.size();
  collect_ack_ranges();
  chunk.reset();
}

void ChunkWork::decode_lines(RecordDecoder& decoder, size_t lane) {
  records.reserve(chunk->lines.size());
  std::string error;
  for (const auto& ref : chunk->lines) {
    Position pos{index, ref.number, ref.end_offset};
    if (mark->is_done(pos.line)) continue;  // a resumed run did it already
    std::string_view line = chunk->text(ref);
    if (ref.too_long) {
      failed.push_back({Record{std::string(line), pos, Outcome::input_error, 0, {}}, "lines", too_long_message(max_line), 1, false});
      continue;
    }
    Decoded d = decoder.decode(line, true);  // the chunk keeps padding after every line
    if (d.kind == Decoded::skip) {
      handled.push_back(pos);
      continue;
    }
    if (d.kind != Decoded::record) {
      failed.push_back({Record{std::string(line), pos, Outcome::input_error, 0, {}}, "lines", std::move(d.data), 1, false});
      continue;
    }
    ++decoded;
    StepRecord r;
    r.pos = pos;
    if (d.data.empty()) {  // json: the line itself, trimmed, in place
      r.text = decoder.last_trimmed();
      r.padded = true;
    } else {
      r.replace(std::move(d.data));
    }
    if (steps) {
      r.parsed = decoder.last_parsed();
      r.rows = &rows;
      if (!steps->run_record(lane, r, stepped, error)) continue;
    }
    records.push_back(std::move(r));
  }
}

}  // namespace aetl
