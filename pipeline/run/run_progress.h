#pragma once
#include <memory>

#include <asio/io_context.hpp>

namespace aetl {

struct RunContext;

/// The progress line of `aetl run` on a terminal (stderr): records in/out per
/// part, the sink's rate, records in flight, failures. Redrawn five times a second.
class RunProgress {
 public:
  RunProgress(asio::io_context& io, const RunContext& run);
  ~RunProgress();
  void stop();
  void clear();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aetl
