#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/channel.h"
#include "engine/engine.h"
#include "engine/record.h"
#include "engine/stage_context.h"
#include "net/http/attempt_policy.h"

namespace aetl {

class LedgerFollower;
class ResumeFilter;

/// One request of the fetch stage, made by its mode: what to send, where the
/// body goes, and how the outcome becomes a record.
class FetchJob {
 public:
  virtual ~FetchJob() = default;
  virtual const HttpRequest& request() const = 0;
  std::string host;  ///< host:port, for per_host
  std::string key;   ///< identity in the ledger (request_key); empty: not tracked
  Position pos;      ///< the input record's
  uint64_t part = 0; ///< the input record's Record::part

  /// Readies the body's destination before the first attempt; false: no attempt
  /// is made (finish() then reports why).
  virtual asio::awaitable<bool> open() { co_return true; }
  /// Where the body goes (nullptr: discarded); valid after open().
  virtual BodyConsumer* body() = 0;
  /// Awaited before each attempt, with its permits held.
  virtual asio::awaitable<void> before_attempt() { co_return; }
  /// What the request came to. `record`: what to pass on (nullopt: nothing, the
  /// record went to the dead letter); `outcome`: ok, failed or failed_retry.
  struct Finished {
    std::optional<Record> record;
    Outcome outcome = Outcome::ok;
  };
  virtual asio::awaitable<Finished> finish(const Attempted& attempted) = 0;
  /// Cancelled by the run (abort, or a stop before its first attempt): no outcome,
  /// nothing passed on; the next run does it again.
  virtual asio::awaitable<void> drop() { co_return; }
};

/// What the fetch stage does with records, and the counters it keeps: afetch's
/// request lines (RequestLines) or a pipeline's templates (RequestTemplates).
/// Sees every attempt as the policy's observer.
class FetchMode : public AttemptObserver {
 public:
  /// What one input record becomes: a job, a record passed on in its turn (an
  /// input line in error), or neither (a comment line, a record dead-lettered).
  struct Made {
    std::unique_ptr<FetchJob> job;
    std::optional<Record> pass_on;
  };
  virtual void received(const Batch&) {}
  virtual Made make(Record& record) = 0;
  /// The ledger has `job` as done (succeeded, or failed for good): not fetched.
  virtual void skipped(FetchJob& job) = 0;
  /// Waits while what follows cannot take more failures (the dead letter's queue).
  virtual asio::awaitable<void> wait_room() { co_return; }
};

struct FetchStageOptions {
  AttemptLimits limits;  ///< concurrency, per host, rate, retries
  bool ordered = false;  ///< emit in input order (reorder window = concurrency)
  size_t batch_size = 512;
  std::chrono::milliseconds linger{20};
  /// The ledger (afetch --state, `ledger:`): requests it has as done are skipped.
  ResumeFilter* filter = nullptr;
  /// Pipelines: records each outcome in the ledger once its record is handled.
  /// (afetch records from the result lines' key and outcome, once written.)
  LedgerFollower* follower = nullptr;
};

/// The `fetch` stage, for afetch and pipelines alike: each record becomes a
/// request (by the mode), run under the one attempt policy, its outcome a record
/// — as they complete, or in input order. A stop lets work in flight finish and
/// starts nothing new; an abort drops what is unfinished (nothing passed on or
/// recorded, so the next run does it again). An exception (a bug, a resource
/// failure) aborts the run and is rethrown once everything ended.
class FetchStage final : public Stage {
 public:
  FetchStage(StageContext& ctx, FetchStageOptions options, HttpTransport& transport, FetchMode& mode);
  ~FetchStage() override;

  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override;

 private:
  struct Parts;
  asio::awaitable<void> dispatch(BatchChannel& in);
  asio::awaitable<void> skip_done(std::vector<FetchMode::Made>& made);
  /// fetch_one, plus: an exception aborts the run and still releases `seq`.
  asio::awaitable<void> fetch_guarded(std::unique_ptr<FetchJob> job, uint64_t seq);
  /// Pushes exactly one result (or nothing-result) for `seq` unless it throws.
  asio::awaitable<void> fetch_one(FetchJob& job, uint64_t seq);

  StageContext& ctx_;
  FetchStageOptions options_;
  FetchMode& mode_;
  std::unique_ptr<Parts> parts_;
  uint64_t next_seq_ = 0;
};

}  // namespace aetl
