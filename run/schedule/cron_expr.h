#pragma once
#include <bitset>
#include <string>
#include <string_view>

namespace aetl {

/// A crontab(5) time expression: five fields `minute hour day-of-month month
/// day-of-week`, each `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a
/// list of those; months and days may be named (`jan`, `mon`); day of week 0 or 7
/// is Sunday; `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly`
/// (`@annually`) stand for their five fields. As in Vixie cron, when both the
/// day of month and the day of week are restricted (neither starts with `*`), a
/// day matches if either does. Times are read in the schedule's time zone
/// (run/schedule/schedule.h).
class CronExpr {
 public:
  /// Throws std::invalid_argument naming the field and the cause
  /// ("hour: 24 is out of range 0-23").
  static CronExpr parse(std::string_view text);

  bool minute(int m) const { return minutes_[static_cast<size_t>(m)]; }
  bool hour(int h) const { return hours_[static_cast<size_t>(h)]; }
  bool month(int m) const { return months_[static_cast<size_t>(m)]; }
  /// `dom` 1-31, `dow` 0-6 (Sunday 0).
  bool day(int dom, int dow) const;
  const std::string& text() const { return text_; }
  /// Only the minute and hour fields restrict it (every day of the year matches).
  bool every_day() const { return dom_star_ && dow_star_ && months_.all(); }

  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    ///< 1-31
  std::bitset<13> months_;  ///< 1-12
  std::bitset<7> weekdays_; ///< 0-6, Sunday 0
  bool dom_star_ = false;
  bool dow_star_ = false;

 private:
  std::string text_;
};

}  // namespace aetl
