#pragma once
#include <vector>

#include "engine/engine.h"
#include "sources/lines/input_files.h"

namespace aetl {

/// The `lines` source: each line of each input, in order, as a record whose data is
/// the raw line (without terminator) and whose position names input, line and offset.
/// A line longer than max_line becomes a record with outcome input_error holding
/// the line's first bytes. Stops reading when the run stops.
class LinesSource final : public Source {
 public:
  LinesSource(StageContext& ctx, const std::vector<InputFile>& inputs, size_t max_line);
  asio::awaitable<void> run(BatchChannel& out) override;

  uint64_t bytes_read() const { return bytes_read_; }

 private:
  StageContext& ctx_;
  const std::vector<InputFile>& inputs_;
  size_t max_line_;
  uint64_t bytes_read_ = 0;
};

}  // namespace aetl
