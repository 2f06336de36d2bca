#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "expr/expression.h"
#include "engine/record.h"

namespace aetl {

/// A record as the record steps see it: one JSON object, either still in place in
/// the chunk it was read into or owned after a step rewrote it. Only records that
/// survive every step are copied into a Record, so a filter that drops most lines
/// costs no allocation for them.
struct StepRecord {
  std::string_view text;  ///< the JSON object
  std::string owned;      ///< holds `text` once the record was rewritten (or moved in)
  Position pos;
  uint64_t part = 0;      ///< Record::part
  uint32_t routes = 0;    ///< Record::routes
  bool padded = false;    ///< kRecordPadding readable bytes follow `text` (parsed in place)
  /// Set only while the first step looks at a record the source has just parsed
  /// (to check it): the step may read that parse instead of parsing again.
  const expr::ParsedRecord* parsed = nullptr;
  /// Set by a step that built `text` from values (select), until the record is
  /// rewritten again: the next step may read those values instead of the text.
  const expr::ProjectedRecord* projected = nullptr;
  /// Where a sink's row step writes its encoding of the record: appended to
  /// `*rows` (the job's buffer, shared by the records it makes; nullptr: nowhere),
  /// at `row_at`, `row_size` bytes.
  std::string* rows = nullptr;
  uint32_t row_at = 0;
  uint32_t row_size = 0;

  StepRecord() = default;
  // A short owned text lives inside `owned` itself (SSO): moving must re-point `text`.
  StepRecord(StepRecord&& o) noexcept { *this = std::move(o); }
  StepRecord& operator=(StepRecord&& o) noexcept {
    bool own = o.owns_text();
    owned = std::move(o.owned);
    text = own ? std::string_view(owned) : o.text;
    pos = o.pos;
    part = o.part;
    routes = o.routes;
    padded = o.padded;
    parsed = o.parsed;
    projected = o.projected;
    rows = o.rows;
    row_at = o.row_at;
    row_size = o.row_size;
    return *this;
  }
  StepRecord(const StepRecord&) = delete;
  StepRecord& operator=(const StepRecord&) = delete;

  bool owns_text() const { return !owned.empty() && owned.data() == text.data() && owned.size() == text.size(); }

  /// Takes over a Record's text (a stage behind something that is not a step).
  static StepRecord from(Record&& r) {
    StepRecord s;
    s.pos = r.pos;
    s.part = r.part;
    s.routes = r.routes;
    s.owned = std::move(r.data);
    s.text = s.owned;
    s.padded = s.owned.capacity() - s.owned.size() >= expr::kRecordPadding;
    return s;
  }
  /// The step built a new text for the record.
  void replace(std::string&& json) {
    parsed = nullptr;
    projected = nullptr;
    owned = std::move(json);
    text = owned;
    padded = owned.capacity() - owned.size() >= expr::kRecordPadding;
  }
  /// The text as a Record's payload (copied once, with padding, if still in place).
  std::string take() {
    if (owns_text()) return std::move(owned);
    std::string s;
    s.reserve(text.size() + expr::kRecordPadding);
    s.assign(text);
    return s;
  }
};

/// Binds a record to an evaluator from the parse or the values that came with it
/// (the same results as from the text, without parsing it again), else from the text.
inline bool bind_step_record(expr::Evaluator& eval, const StepRecord& rec, std::string& error) {
  if (rec.parsed) return eval.bind(*rec.parsed, rec.text, rec.padded, error);
  if (rec.projected) return eval.bind(*rec.projected, rec.text, rec.padded, error);
  return eval.bind(rec.text, rec.padded, error);
}

/// A stage that works on one record at a time with no state across records
/// (filter, select, set). Consecutive steps run together in one pool job, and the
/// ones right behind a lines source run inside the source's own decoding jobs:
/// a record then crosses no thread and is copied once, at the end.
class RecordStep {
 public:
  enum class Verdict { keep, drop, fail };
  virtual ~RecordStep() = default;
  /// Runs on a pool thread; two calls never share a lane (< step_lanes()) at once.
  /// keep: `rec` goes on (possibly rewritten); drop: filtered out; fail: `error`
  /// says why and the record goes to the dead letter.
  virtual Verdict apply(size_t lane, StepRecord& rec, std::string& error) = 0;
};

/// Lanes (jobs working at once) of the lines source and of every chain of record
/// steps: one per CPU, 2 to 8. More lanes than CPUs only take CPU time from the
/// sink's writer (on 2 CPUs, 4 lanes made the SQLite benchmark 10% slower).
inline size_t step_lanes() {
  static const size_t lanes = std::clamp<size_t>(std::thread::hardware_concurrency(), 2, 8);
  return lanes;
}

}  // namespace aetl
