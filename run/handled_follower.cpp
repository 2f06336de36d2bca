#include "run/handled_follower.h"

#include "run/checkpoint.h"
#include "run/run_context.h"

namespace aetl {

HandledFollower::HandledFollower(AckTracker& tracker, CheckpointEvents& checkpoints, ForGood for_good, Failed failed)
    : for_good_(std::move(for_good)), gated_(checkpoints.gated) {
  std::weak_ptr<bool> alive = alive_;
  if (failed)
    tracker.on_failed([alive, failed](const Position& pos) {
      if (alive.lock()) failed(pos.source, pos.line);
    });
  tracker.on_handled([this, alive](uint32_t source, uint64_t first, uint64_t last) {
    if (!alive.lock()) return;
    if (gated_) {
      handled_.emplace_back(source, first, last);
    } else {
      for_good_(source, first, last);  // no vector per call: this comes for every record
    }
  });
  if (!gated_) return;
  checkpoints.on_taken.push_back([this, alive] {
    if (!alive.lock()) return;
    in_save_.insert(in_save_.end(), handled_.begin(), handled_.end());
    handled_.clear();
  });
  checkpoints.on_saved.push_back([this, alive] {
    if (!alive.lock()) return;
    Runs saved;
    saved.swap(in_save_);
    release(saved);
  });
}

HandledFollower::~HandledFollower() { *alive_ = false; }

void HandledFollower::release(Runs& runs) {
  for (auto [source, first, last] : runs) for_good_(source, first, last);
}

}  // namespace aetl
