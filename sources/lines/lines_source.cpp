#include "sources/lines/lines_source.h"

#include "engine/shutdown.h"
#include "sources/lines/line_reader.h"

namespace aetl {

LinesSource::LinesSource(StageContext& ctx, const std::vector<InputFile>& inputs, size_t max_line)
    : ctx_(ctx), inputs_(inputs), max_line_(max_line) {}

asio::awaitable<void> LinesSource::run(BatchChannel& out) {
  std::vector<Line> lines;
  for (uint32_t source = 0; source < inputs_.size() && !ctx_.control.stopping(); ++source) {
    LineReader reader(ctx_.pool, ctx_.control, inputs_[source], max_line_);
    uint64_t counted = 0;
    for (;;) {
      // Not `while (co_await ...)`: GCC 12 miscompiles co_await inside a condition.
      bool more = co_await reader.next(lines);
      if (!more) break;
      Batch batch;
      batch.reserve(lines.size());
      for (auto& line : lines) {
        Record r;
        r.data = std::move(line.text);
        r.pos = Position{source, line.number, line.end_offset};
        if (line.too_long) r.outcome = Outcome::input_error;
        batch.push_back(std::move(r));
      }
      lines.clear();
      bytes_read_ += reader.bytes_read() - counted;
      counted = reader.bytes_read();
      co_await send_batch(out, std::move(batch));
    }
  }
  co_await send_batch(out, Batch{});
}

}  // namespace aetl
