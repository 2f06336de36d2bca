#pragma once
#include <string>

#include "engine/engine.h"

namespace aetl {

/// The `jsonl` sink: one line per record, to standard output ("-") or a file.
/// Each batch is written with as few write() calls as possible from the blocking
/// pool (a slow reader never stalls the loop); with `durable`, a file is fsync'd
/// before the batch counts as written. A closed pipe (EPIPE) is a quiet stop; a
/// reader that stops reading holds up the run only until it aborts.
class JsonlSink final : public Sink {
 public:
  JsonlSink(StageContext& ctx, std::string path, bool append, bool durable);
  ~JsonlSink() override;

  asio::awaitable<void> open() override;
  asio::awaitable<bool> write(const Batch& batch) override;
  asio::awaitable<void> close() override;

  uint64_t lines_written() const { return lines_; }

 private:
  StageContext& ctx_;
  std::string path_;
  bool append_;
  bool durable_;
  int fd_ = -1;
  bool fsync_supported_ = true;
  bool regular_ = false;  // a regular file: plain writes; else poll first
  uint64_t lines_ = 0;
};

}  // namespace aetl
