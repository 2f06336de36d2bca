#pragma once
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/engine.h"
#include "stages/fetch/fetch_stage.h"

namespace aetl {

/// afetch's resume state (--state FILE): an SQLite file recording each request
/// whose result line was written. A rerun skips requests that succeeded or failed
/// for good (4xx, bad TLS, ...) and tries again those that failed on something
/// transient (timeouts, connection errors, 429, 5xx). All SQLite work happens on
/// the store's own thread; results are recorded only after the sink made them durable.
class FetchState final : public ResumeFilter, public CommitListener {
 public:
  /// Opens or creates the file. Throws SetupError if it is not a usable SQLite database.
  explicit FetchState(const std::string& path);
  ~FetchState() override;

  asio::awaitable<std::vector<char>> already_done(std::vector<std::string> keys) override;
  asio::awaitable<void> committed(const Batch& batch) override;

 private:
  struct Db;
  std::unique_ptr<Db> db_;
};

}  // namespace aetl
