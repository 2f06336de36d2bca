#pragma once
#include "run/pipeline_runner.h"
#include "run/schedule/schedule.h"
#include "run/schedule/slot_book.h"

namespace aetl {

/// How a scheduled pipeline ended.
struct ScheduleOutcome {
  bool ran = false;   ///< at least one fire ran the pipeline
  RunOutcome last;    ///< the last fire's (with `once`: the one fire's, if it ran)
  bool stopped = false;  ///< SIGINT/SIGTERM while waiting between fires
};

/// Runs `pipeline` at the slots of `schedule`, each fire a whole run of
/// run_pipeline_spec with `base` options (its own summary, metrics and
/// checkpoint). Each slot runs once among all schedulers sharing `book`: a fire
/// takes the run lock, then claims its slot, and one that finds the slot claimed
/// (or the lock held) logs so and does nothing. After downtime (or a fire that
/// overran later slots) the missed fires run once, if the newest is within the
/// schedule's grace (`misfire: run_once`), or are skipped (`misfire: skip`),
/// and either is logged. With no fire on record, the first fire is the next slot.
///
/// `once`: the slot due now (the last at or before now) only, then return: for
/// cron lines and systemd timers. Otherwise stays up, waiting between fires,
/// until SIGINT/SIGTERM (while waiting: `stopped`; during a run: that run stops as
/// any run does, `last.interrupted`, and so does the schedule).
ScheduleOutcome run_schedule(const Pipeline& pipeline, const RunOptions& base, const Schedule& schedule,
                             SlotBook& book, bool once);

}  // namespace aetl
