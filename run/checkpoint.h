#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/record.h"

namespace aetl {

/// Where a run stands in its inputs: for each input, every line up to `line`
/// (ending at byte `offset`) is handled, plus the ranges in `done` above it —
/// records that finished out of order (a concurrent stage) or after a record that
/// failed with no dead-letter sink. A resumed run seeks to `offset` and skips the
/// lines in `done`, so nothing is done twice and nothing is lost.
struct InputMark {
  std::string name;
  uint64_t line = 0;
  uint64_t offset = 0;
  struct Range {
    uint64_t first = 0, last = 0;  ///< lines, inclusive
    uint64_t end_offset = 0;       ///< just past line `last`
  };
  std::vector<Range> done;
  bool is_done(uint64_t line) const;
};

/// Under this key of Checkpoint::sink_lengths, the dead-letter file's inode: a
/// dead letter that is another file now (`aetl replay` rewrote it, or it was
/// moved away) is appended to where it ends, not cut back to the recorded length.
inline constexpr std::string_view kDeadLetterFileId = "dead_letter@inode";

/// A checkpoint: the inputs' marks and the lengths of the file sinks at that
/// moment (a resumed run cuts those files back to these lengths first).
struct Checkpoint {
  std::vector<InputMark> inputs;
  std::map<std::string, uint64_t> sink_lengths;
  /// Several sinks: what each file sink holds at its length (records it wrote
  /// ahead of the slower sinks, beyond `inputs`); a resumed run skips those for it.
  std::map<std::string, std::vector<InputMark>> sink_marks;

  const InputMark* find(const std::string& name) const;
  std::string to_json() const;
  /// Throws std::runtime_error on text that is not a checkpoint.
  static Checkpoint from_json(std::string_view text);
};

/// Follows every record from the source to its end (written by the sink, written
/// to the dead letter, or dropped by a filter) and knows how far each input is
/// handled. Loop thread only.
class AckTracker {
 public:
  /// Declares input `index`; `resume` is its mark from the last checkpoint, if any.
  void add_input(uint32_t index, const std::string& name, const InputMark* resume);
  /// Names input `index` in snapshots from its mark: a source whose position is
  /// more than a line number (the http source: the page holding the first line not
  /// yet handled) keeps it in the name. The name given to add_input must be the
  /// start of every name `namer` returns (absorb() matches by it). `namer` may be
  /// called on any thread that takes a snapshot of a copy of the tracker.
  using Namer = std::function<std::string(const InputMark&)>;
  void name_by(uint32_t index, Namer namer);
  /// Keeps the mark of an input this run does not read (a file gone from a glob),
  /// so it is not lost from the checkpoint.
  void carry(const InputMark& mark) { carried_.push_back(mark); }
  /// Stops carrying the mark named `name` (an input that replaces it was added).
  void drop_carried(const std::string& name) {
    std::erase_if(carried_, [&](const InputMark& m) { return m.name == name; });
  }
  /// The record at `pos` was split into `parts` records (jq producing several):
  /// it is handled once all of them are. parts == 0 means handled now.
  void split(const Position& pos, uint32_t parts);
  /// One record (or one part of a split record) is handled. Idempotent for lines
  /// already handled.
  void ack(const Position& pos);
  /// Lines first..last of input `source` are handled (a run of dropped or blank
  /// lines at once); `end_offset` is the one of line `last`. For lines that never
  /// left the source's jobs, so none of them was split.
  void ack_range(uint32_t source, uint64_t first, uint64_t last, uint64_t end_offset);
  /// Marks done what `mark` holds, for the input of its name (none: nothing), with
  /// no hooks called: a copy made a sink's checkpoint keeps what that sink held
  /// before this run (its committed_before) until the run itself has passed it.
  void absorb(const InputMark& mark);
  /// A record that failed with no dead letter: not acked, but counted (and told
  /// to the on_failed hooks: it will not be handled in this run).
  void fail(const Position& pos) {
    ++failed_;
    for (const auto& hook : hooks_.failed) hook(pos);
  }
  /// Calls `hook` with each record that fails with no dead letter.
  using FailedHook = std::function<void(const Position&)>;
  void on_failed(FailedHook hook) { hooks_.failed.push_back(std::move(hook)); }
  /// True if a resumed run already handled this line.
  bool already_done(const Position& pos) const;

  /// Calls `hook` with every run of lines (of input `source`, first..last) that an
  /// ack() or ack_range() has just handled (a record being handled for good: a
  /// stage's per-record ledger follows the checkpoint this way). Copies of the
  /// tracker do not call it.
  using HandledHook = std::function<void(uint32_t source, uint64_t first, uint64_t last)>;
  void on_handled(HandledHook hook) { hooks_.list.push_back(std::move(hook)); }

  Checkpoint snapshot() const;
  uint64_t acked() const { return acked_; }
  /// Bytes of the inputs handled without a gap (the sum of their watermarks' offsets).
  uint64_t handled_bytes() const {
    uint64_t n = 0;
    for (const auto& in : inputs_) n += in.mark.offset;
    return n;
  }
  uint64_t failed() const { return failed_; }
  uint64_t version() const { return version_; }  ///< changes with every ack

 private:
  struct Input {
    InputMark mark;
    std::map<uint64_t, InputMark::Range> ahead;  // by first line
    std::unordered_map<uint64_t, uint32_t> parts;  // split lines: parts still pending
    Namer namer;
  };
  void mark_done(Input& in, uint64_t first, uint64_t last, uint64_t end_offset);
  void handled(uint32_t source, uint64_t first, uint64_t last) const {
    for (const auto& hook : hooks_.list) hook(source, first, last);
  }
  /// Not copied: a copy (a preview of the checkpoint) handles nothing for real.
  struct Hooks {
    Hooks() = default;
    Hooks(const Hooks&) {}
    Hooks& operator=(const Hooks&) { return *this; }
    std::vector<HandledHook> list;
    std::vector<FailedHook> failed;
  };

  std::vector<Input> inputs_;
  std::vector<InputMark> carried_;
  uint64_t acked_ = 0;
  uint64_t failed_ = 0;
  uint64_t version_ = 0;
  Hooks hooks_;
};

}  // namespace aetl
