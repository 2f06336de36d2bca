#include <catch2/catch.hpp>

#include <date/date.h>

#include "run/schedule/cron_expr.h"
#include "run/schedule/schedule.h"

using namespace aetl;
using namespace std::chrono;

namespace {

Slot at(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  return Slot(date::sys_days(date::year(y) / mo / d).time_since_epoch() + hours(h) + minutes(mi) + seconds(s));
}

Schedule cron(const std::string& expr, const std::string& tz = "Etc/UTC") {
  ScheduleSpec s;
  s.cron = expr;
  s.timezone = tz;
  return Schedule(s);
}

std::string error_of(const std::string& expr) {
  try {
    CronExpr::parse(expr);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("cron expressions: fields, names, steps and the errors of each") {
  CronExpr c = CronExpr::parse("*/15 9-17 * jan,JUL mon-fri");
  CHECK(c.minute(0));
  CHECK(c.minute(45));
  CHECK_FALSE(c.minute(10));
  CHECK(c.hour(17));
  CHECK_FALSE(c.hour(18));
  CHECK(c.month(7));
  CHECK_FALSE(c.month(2));
  CHECK(c.day(3, 1));
  CHECK_FALSE(c.day(3, 0));
  CHECK(CronExpr::parse("0 0 * * 7").day(1, 0));  // 7 is Sunday
  CHECK(CronExpr::parse("5/20 * * * *").minute(45));
  CHECK_FALSE(CronExpr::parse("5/20 * * * *").minute(40));
  // a regression: a huge step overflowed the loop past the field's end
  CronExpr huge = CronExpr::parse("59/2147483600 * * * *");
  CHECK(huge.minute(59));
  CHECK_FALSE(huge.minute(0));
  // Vixie cron: both day fields restricted means either
  CronExpr both = CronExpr::parse("0 0 1 * mon");
  CHECK(both.day(1, 3));
  CHECK(both.day(9, 1));
  CHECK_FALSE(both.day(9, 2));
  CHECK(CronExpr::parse("@daily").hour(0));
  CHECK(error_of("* * *") == "needs 5 fields (minute hour day-of-month month day-of-week), got 3");
  CHECK(error_of("0 24 * * *") == "hour: 24 is out of range 0-23");
  CHECK(error_of("x * * * *") == "minute: 'x' is not a number");
  CHECK(error_of("* * * foo *") == "month: 'foo' is not a number or a name");
  CHECK(error_of("*/0 * * * *") == "minute: step '0' is not a positive number");
  CHECK(error_of("30-10 * * * *") == "minute: range '30-10' runs backwards");
  CHECK(error_of("@often") ==
        "unknown '@often' (known: @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually)");
}

TEST_CASE("every: the multiples of the interval since the epoch") {
  ScheduleSpec s;
  s.every = minutes(15);
  Schedule e(s);
  CHECK(e.next_after(at(2026, 12, 7, 6, 7)) == at(2026, 12, 7, 6, 15));
  CHECK(e.next_after(at(2026, 12, 7, 6, 15)) == at(2026, 12, 7, 6, 30));
  CHECK(e.latest_at_or_before(at(2026, 12, 7, 6, 15)) == at(2026, 12, 7, 6, 15));
  CHECK(e.latest_at_or_before(at(2026, 12, 7, 6, 29, 59)) == at(2026, 12, 7, 6, 15));
  CHECK(e.interval_at(at(2026, 12, 7, 6, 15)) == minutes(15));
  CHECK(e.grace_at(at(2026, 12, 7, 6, 15)) == minutes(15));
  CHECK(e.format(at(2026, 12, 7, 6, 15)) == "2026-12-07T06:15:00Z");
  CHECK(e.describe() == "every 15m");
  CHECK(format_every(seconds(5400)) == "1h30m");
  CHECK(format_every(hours(48)) == "2d");
}

TEST_CASE("cron: next and latest slots, in UTC and across daylight-saving changes") {
  Schedule q = cron("*/15 * * * *");
  CHECK(q.next_after(at(2026, 12, 7, 6, 7)) == at(2026, 12, 7, 6, 15));
  CHECK(q.latest_at_or_before(at(2026, 12, 7, 6, 14, 59)) == at(2026, 12, 7, 6, 0));
  CHECK(q.latest_at_or_before(at(2026, 12, 7, 6, 15)) == at(2026, 12, 7, 6, 15));
  Schedule monthly = cron("@monthly");
  CHECK(monthly.next_after(at(2026, 12, 7, 6, 7)) == at(2027, 1, 1, 0, 0));
  CHECK(monthly.latest_at_or_before(at(2026, 12, 7, 6, 7)) == at(2026, 12, 1, 0, 0));
  CHECK(monthly.interval_at(at(2026, 12, 1, 0, 0)) == hours(24 * 31));
  Schedule leap = cron("0 12 29 2 *");
  CHECK(leap.next_after(at(2026, 12, 7, 0, 0)) == at(2028, 2, 29, 12, 0));

  // Berlin: 2026-03-29 02:00 local does not exist (clocks go to 03:00 at 01:00 UTC).
  Schedule spring = cron("30 2 * * *", "Europe/Berlin");
  CHECK(spring.next_after(at(2026, 3, 28, 12, 0)) == at(2026, 3, 29, 1, 0));  // at the change
  CHECK(spring.next_after(at(2026, 3, 29, 1, 0)) == at(2026, 3, 30, 0, 30));
  // 2026-10-25 02:30 local happens twice: fired once, the first time (00:30 UTC).
  Schedule autumn = cron("30 2 * * *", "Europe/Berlin");
  CHECK(autumn.next_after(at(2026, 10, 24, 12, 0)) == at(2026, 10, 25, 0, 30));
  CHECK(autumn.next_after(at(2026, 10, 25, 0, 30)) == at(2026, 10, 26, 1, 30));
  CHECK(autumn.format(at(2026, 10, 26, 1, 30)) == "2026-10-26T02:30:00+01:00");
  CHECK(autumn.describe() == "cron '30 2 * * *' (Europe/Berlin)");
}

TEST_CASE("schedules that cannot be") {
  auto error = [](ScheduleSpec s) -> std::string {
    try {
      Schedule x(s);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  ScheduleSpec never;
  never.cron = "0 0 30 2 *";
  never.timezone = "Etc/UTC";
  CHECK(error(never) == "cron '0 0 30 2 *' matches no time in the next 5 years");
  ScheduleSpec zone;
  zone.cron = "* * * * *";
  zone.timezone = "Mars/Olympus";
  CHECK(error(zone) == "timezone: unknown zone 'Mars/Olympus' (an IANA name such as Europe/Berlin)");
  ScheduleSpec bad;
  bad.cron = "61 * * * *";
  CHECK(error(bad) == "cron '61 * * * *': minute: 61 is out of range 0-59");
}
