#pragma once
#include <chrono>
#include <optional>
#include <string>

#include "run/schedule/cron_expr.h"
#include "run/schedule/schedule_spec.h"

namespace date {
class time_zone;
}

namespace aetl {

/// A point in time a schedule fires at, whole seconds since the Unix epoch (UTC).
/// A run of a scheduled pipeline is identified by its pipeline and its slot.
using Slot = std::chrono::sys_seconds;

/// The times a schedule fires at. `every: D` fires at the multiples of D since
/// the Unix epoch (so 15m fires at :00, :15, :30, :45 UTC, on every host alike);
/// a cron expression at the minutes it matches in its time zone. A local time
/// that a daylight-saving change skips fires at the change; one it repeats fires
/// once, the first time.
class Schedule {
 public:
  /// Throws std::invalid_argument ("cron: ...", "timezone: unknown zone 'X'").
  explicit Schedule(const ScheduleSpec& spec);

  /// The first slot after `t`. Throws std::runtime_error if a cron expression
  /// matches no time in the next 5 years (`0 0 30 2 *`).
  Slot next_after(Slot t) const;
  /// The last slot at or before `t`.
  Slot latest_at_or_before(Slot t) const;
  /// The time from `slot` to the next one (the default grace).
  std::chrono::seconds interval_at(Slot slot) const;
  /// How late a missed fire may still run.
  std::chrono::milliseconds grace_at(Slot slot) const;
  /// "2026-12-07T06:15:00Z" (every) or "2026-12-07T07:15:00+01:00" (cron, in its zone).
  std::string format(Slot slot) const;
  /// "every 15m" or "cron '*/15 * * * *' (Europe/Berlin)".
  std::string describe() const;

  const ScheduleSpec& spec() const { return spec_; }
  const std::optional<CronExpr>& cron() const { return cron_; }
  /// The zone's name ("Etc/UTC" for `every`).
  std::string zone_name() const;

 private:
  ScheduleSpec spec_;
  std::optional<CronExpr> cron_;
  const date::time_zone* zone_ = nullptr;
};

/// "15m", "1h30m", "45s": a whole number of seconds as `every` is written.
std::string format_every(std::chrono::seconds every);

}  // namespace aetl
