#include "stages/fetch/ledger_follower.h"

#include <spdlog/spdlog.h>

#include "run/checkpoint.h"
#include "run/run_context.h"

namespace aetl {

LedgerFollower::LedgerFollower(std::unique_ptr<FetchState> ledger, AckTracker& tracker, CheckpointEvents& checkpoints,
                               asio::any_io_executor ex, std::string name)
    : ledger_(std::move(ledger)),
      ex_(std::move(ex)),
      name_(std::move(name)),
      follower_(tracker, checkpoints, [this](uint32_t source, uint64_t first, uint64_t last) { handled(source, first, last); }) {}

LedgerFollower::~LedgerFollower() {
  *alive_ = false;
  try {
    ledger_->record_now(ready_);
  } catch (const std::exception& e) {
    if (!failed_) spdlog::error("{}: {}", name_, e.what());
  }
}

void LedgerFollower::expect(const Position& pos, std::string key, Outcome outcome) {
  waiting_[{pos.source, pos.line}].emplace_back(std::move(key), outcome);
}

void LedgerFollower::handled(uint32_t source, uint64_t first, uint64_t last) {
  if (waiting_.empty()) return;
  auto it = waiting_.lower_bound({source, first});
  auto end = waiting_.upper_bound({source, last});
  if (it == end) return;
  for (auto k = it; k != end; ++k)
    for (auto& row : k->second) ready_.push_back(std::move(row));
  waiting_.erase(it, end);
  write();
}

void LedgerFollower::write() {
  if (writing_ || ready_.empty()) return;
  writing_ = true;
  FetchState::Rows rows;
  rows.swap(ready_);
  std::weak_ptr<bool> alive = alive_;
  ledger_->record_in_background(std::move(rows), ex_, [this, alive](std::string error) {
    if (!alive.lock()) return;
    writing_ = false;
    if (!error.empty() && !failed_) {
      spdlog::error("{}: {} (the records concerned are fetched again next time)", name_, error);
      failed_ = true;
    }
    write();
  });
}

}  // namespace aetl
