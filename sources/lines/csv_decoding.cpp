#include "sources/lines/csv_decoding.h"

#include <stdexcept>
#include <string_view>

#include "sources/lines/chunk_work.h"
#include "sources/lines/line_chunks.h"

namespace aetl {

void CsvDecoding::decode(const LineChunk& chunk, ChunkWork& work) {
  for (const auto& ref : chunk.lines) {
    Position pos{index, ref.number, ref.end_offset};
    bool first = first_line == 0;
    if (first) first_line = ref.number;
    Position rec_pos{index, first_line, ref.end_offset};
    // A record spanning lines carries its first line; the others are handled with it.
    if (!first) work.handled.push_back(pos);
    std::string_view line = chunk.text(ref);
    if (ref.too_long) {
      first_line = 0;
      if (mark->is_done(rec_pos.line)) continue;
      work.failed.push_back({Record{std::string(line), rec_pos, Outcome::input_error, 0, {}}, "lines", too_long_message(max_line), 1, false});
      continue;
    }
    Decoded d = decoder.decode_csv(line, ref.number, ref.crlf);
    if (d.kind == Decoded::more) continue;
    // Without a header no row can be read right: the input fails, rather than
    // the next row becoming the keys.
    if (d.kind == Decoded::error && !decoder.has_header()) throw std::runtime_error(name + ": the header row: " + d.data);
    first_line = 0;
    if (mark->is_done(rec_pos.line)) continue;  // a resumed run did it already
    if (d.kind == Decoded::skip) {
      work.handled.push_back(rec_pos);
    } else if (d.kind == Decoded::error) {
      work.failed.push_back({Record{std::string(line), rec_pos, Outcome::input_error, 0, {}}, "lines", std::move(d.data), 1, false});
    } else {
      StepRecord r;
      r.pos = rec_pos;
      r.replace(std::move(d.data));
      work.records.push_back(std::move(r));
    }
  }
}

void CsvDecoding::finish(ChunkWork& work) {
  if (!decoder.pending()) return;
  work.failed.push_back({Record{"", Position{index, first_line, 0}, Outcome::input_error, 0, {}}, "lines",
                         "the input ends inside a quoted CSV field", 1, false});
}

}  // namespace aetl
