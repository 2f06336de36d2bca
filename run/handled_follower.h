#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <tuple>
#include <vector>

namespace aetl {

class AckTracker;
struct CheckpointEvents;

/// Tells when records are handled for good: handled by the run (written by the
/// sink or the dead letter, or dropped by a filter) as the checkpoint sees it
/// (AckTracker::on_handled), and, when the run keeps checkpoints (a state store
/// or an exactly-once sink), once a saved checkpoint covers them: a resumed run
/// cuts file sinks back to the last checkpoint, so acting on a record before
/// that (acknowledging its queue entry, recording it in a ledger) could lose it.
/// A record that failed with no dead letter, or was cut off by an abort, is
/// never handled for good. Loop thread only.
class HandledFollower {
 public:
  /// `for_good` is called with each run of lines (of input `source`, first..last).
  using ForGood = std::function<void(uint32_t source, uint64_t first, uint64_t last)>;
  /// `failed` (optional): a record failed with no dead letter; it will never be
  /// handled in this run.
  using Failed = std::function<void(uint32_t source, uint64_t line)>;
  HandledFollower(AckTracker& tracker, CheckpointEvents& checkpoints, ForGood for_good, Failed failed = {});
  ~HandledFollower();
  HandledFollower(const HandledFollower&) = delete;
  HandledFollower& operator=(const HandledFollower&) = delete;

 private:
  using Runs = std::vector<std::tuple<uint32_t, uint64_t, uint64_t>>;
  void release(Runs& runs);

  ForGood for_good_;
  bool gated_;
  Runs handled_;  // gated: handled, not yet in a checkpoint's snapshot
  Runs in_save_;  // gated: in the snapshot of a save not yet durable
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace aetl
