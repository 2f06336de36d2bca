#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "engine/record.h"

namespace aetl {

class AckTracker;

/// The acknowledgements of a pipeline with several sinks (`sinks:`). A record
/// sent to several sinks is handled — acknowledged to the tracker, so the
/// checkpoint may pass it — only once every one of them has handled it (written
/// it, or, for a row it refused, had the dead letter write it). An exactly-once
/// sink keeps a checkpoint of its own in its transactions: what the tracker has
/// handled, plus what was handled *for that sink* while other sinks still work on
/// it (records it wrote, records that were never meant for it), so a replay
/// after a crash skips, per sink, what that sink committed. Loop thread only.
class FanOut {
 public:
  /// `exactly_once`: the sinks (bits by index) that keep checkpoints of their own;
  /// `tracked`: those and the file sinks, whose checkpoint marks (add_handled_for)
  /// are kept too. A record for one sink alone is followed only when an
  /// exactly-once sink is left out (its marks stay whole); a file sink's may have a
  /// gap for such a record in flight elsewhere, which is never sent to it anyway.
  FanOut(AckTracker& tracker, uint32_t exactly_once, uint32_t tracked)
      : tracker_(tracker), exactly_once_(exactly_once), tracked_(tracked | exactly_once) {}

  /// `r` goes to the sinks in `to` (bits by index; none: it is handled now).
  /// Call before handing it to them.
  void send(const Record& r, uint32_t to);
  /// Sink `sink` handled `r` (kNoSink: the dead letter did, for a sink that refused it).
  static constexpr size_t kNoSink = static_cast<size_t>(-1);
  void handled(const Record& r, size_t sink);
  /// Acks in `t` (a copy of the tracker) what was handled for sink `sink` and
  /// not yet by the tracker: `t` is then that sink's checkpoint.
  void add_handled_for(size_t sink, AckTracker& t) const;
  /// Records sent and not yet handled by every sink.
  size_t open() const { return open_.size(); }

 private:
  struct Key {
    uint32_t source;
    uint64_t line;
    uint64_t part;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      uint64_t h = k.line * 0x9e3779b97f4a7c15ull ^ k.part ^ (uint64_t(k.source) << 48);
      return static_cast<size_t>(h ^ (h >> 29));
    }
  };
  struct Entry {
    Position pos;
    uint32_t pending = 0;   ///< sinks still to handle it
    uint32_t done_for = 0;  ///< exactly-once sinks it is handled for
  };
  AckTracker& tracker_;
  uint32_t exactly_once_;
  uint32_t tracked_;
  std::unordered_map<Key, Entry, KeyHash> open_;
};

}  // namespace aetl
