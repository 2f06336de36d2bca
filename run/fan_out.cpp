#include "run/fan_out.h"

#include <bit>

#include "run/checkpoint.h"

namespace aetl {

void FanOut::send(const Record& r, uint32_t to) {
  // One sink and no exactly-once sink left out: its acknowledgement is the record's.
  if (to == 0 || (std::has_single_bit(to) && (exactly_once_ & ~to) == 0)) {
    if (to == 0) tracker_.ack(r.pos);
    return;
  }
  Entry& e = open_[Key{r.pos.source, r.pos.line, r.part}];
  e.pos = r.pos;
  e.pending += static_cast<uint32_t>(std::popcount(to));
  e.done_for |= tracked_ & ~to;
}

void FanOut::handled(const Record& r, size_t sink) {
  auto it = open_.find(Key{r.pos.source, r.pos.line, r.part});
  if (it == open_.end()) {  // sent to one sink alone, or failed before it was sent anywhere
    tracker_.ack(r.pos);
    return;
  }
  Entry& e = it->second;
  if (sink < 32) e.done_for |= (1u << sink) & tracked_;
  if (e.pending > 0) --e.pending;
  if (e.pending == 0) {
    tracker_.ack(e.pos);
    open_.erase(it);
  }
}

void FanOut::add_handled_for(size_t sink, AckTracker& t) const {
  if (sink >= 32) return;
  for (const auto& [key, e] : open_)
    if (e.done_for & (1u << sink)) t.ack(e.pos);
}

}  // namespace aetl
