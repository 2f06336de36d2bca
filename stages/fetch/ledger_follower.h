#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "engine/asio.h"

#include "engine/record.h"
#include "run/handled_follower.h"
#include "stages/fetch/fetch_state.h"

namespace aetl {

class AckTracker;
struct CheckpointEvents;

/// The fetch stage's ledger (afetch --state, a pipeline's `ledger: FILE`): a result
/// is recorded once the run has handled its record for good — written by the sink
/// or the dead letter, or dropped by a later filter — as the checkpoint sees it
/// (AckTracker::on_handled), and, when the run saves checkpoints in a state store,
/// once a saved checkpoint covers it (a resumed run cuts file sinks back to the
/// last checkpoint: a result recorded before would be skipped and lost). A record that failed with no dead letter, or was
/// cut off by an abort, is never recorded: the next run fetches it again.
/// Writes go to the ledger's own thread in the background, one transaction at a
/// time; what is left is written when the follower is destroyed (after the loop
/// stopped). A failed write is logged once and costs only refetches. Loop thread only.
class LedgerFollower {
 public:
  /// With `checkpoints` gated (a pipeline saving checkpoints in its state store),
  /// a handled record's outcome waits for a saved checkpoint that covers it.
  LedgerFollower(std::unique_ptr<FetchState> ledger, AckTracker& tracker, CheckpointEvents& checkpoints,
                 asio::any_io_executor ex, std::string name);
  ~LedgerFollower();
  LedgerFollower(const LedgerFollower&) = delete;
  LedgerFollower& operator=(const LedgerFollower&) = delete;

  FetchState& ledger() { return *ledger_; }
  /// The result for the record at `pos` is `outcome` (ok, failed, failed_retry);
  /// recorded under `key` once the record is handled.
  void expect(const Position& pos, std::string key, Outcome outcome);

 private:
  /// Records handled for good (HandledFollower): their outcomes are written.
  void handled(uint32_t source, uint64_t first, uint64_t last);
  void write();

  std::unique_ptr<FetchState> ledger_;
  asio::any_io_executor ex_;
  std::string name_;
  std::map<std::pair<uint32_t, uint64_t>, FetchState::Rows> waiting_;  // by (input, line)
  FetchState::Rows ready_;
  bool writing_ = false;
  bool failed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  HandledFollower follower_;  // last: calls handled() until it is destroyed
};

}  // namespace aetl
