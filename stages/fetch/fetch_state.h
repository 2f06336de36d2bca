#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/record.h"

namespace aetl {

/// Tells which requests an earlier run already finished (afetch --state, `ledger:`).
class ResumeFilter {
 public:
  virtual ~ResumeFilter() = default;
  /// One flag per key, in order: true if that request needs no new fetch.
  virtual asio::awaitable<std::vector<char>> already_done(std::vector<std::string> keys) = 0;
};

/// afetch's resume state (--state FILE): an SQLite file recording each request
/// whose result line was written. A rerun skips requests that succeeded or failed
/// for good (4xx, bad TLS, ...) and tries again those that failed on something
/// transient (timeouts, connection errors, 429, 5xx). All SQLite work happens on
/// the store's own thread; a LedgerFollower records results only once the sink
/// made them durable.
class FetchState final : public ResumeFilter {
 public:
  /// Opens or creates the file. Throws SetupError if it is not a usable SQLite database.
  explicit FetchState(const std::string& path);
  ~FetchState() override;

  asio::awaitable<std::vector<char>> already_done(std::vector<std::string> keys) override;

  /// (key, outcome) pairs to record; the outcome is ok, failed or failed_retry.
  using Rows = std::vector<std::pair<std::string, Outcome>>;
  /// Records `rows` in one transaction on the store's thread, then posts `done`
  /// (with an error message, empty on success) to `ex`. Does not suspend.
  void record_in_background(Rows rows, asio::any_io_executor ex, std::function<void(std::string)> done);
  /// Records `rows` on the calling thread, after every background write ended
  /// (the end of a run, with the loop stopped). Throws std::runtime_error.
  void record_now(const Rows& rows);

 private:
  struct Db;
  std::unique_ptr<Db> db_;
};

}  // namespace aetl
