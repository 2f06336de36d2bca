#include "run/schedule/schedule.h"

#include <date/tz.h>

#include <stdexcept>

namespace aetl {

using namespace std::chrono;

Schedule::Schedule(const ScheduleSpec& spec) : spec_(spec) {
  if (spec.cron.empty() == (spec.every.count() <= 0))
    throw std::invalid_argument("give one of cron and every");
  if (!spec.cron.empty()) {
    try {
      cron_ = CronExpr::parse(spec.cron);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("cron '") + spec.cron + "': " + e.what());
    }
    try {
      zone_ = spec.timezone.empty() ? date::current_zone() : date::locate_zone(spec.timezone);
    } catch (const std::exception&) {
      if (!spec.timezone.empty())
        throw std::invalid_argument("timezone: unknown zone '" + spec.timezone + "' (an IANA name such as Europe/Berlin)");
      zone_ = date::locate_zone("Etc/UTC");  // no /etc/localtime: cron reads UTC
    }
    next_after(floor<seconds>(system_clock::now()));  // throws for an expression that never fires
  }
}

Slot Schedule::next_after(Slot t) const {
  if (!cron_) {
    const int64_t d = spec_.every.count(), s = t.time_since_epoch().count();
    int64_t q = s >= 0 ? s / d : -((-s + d - 1) / d);
    return Slot(seconds((q + 1) * d));
  }
  const CronExpr& c = *cron_;
  auto local = zone_->to_local(t);
  auto m = floor<minutes>(local) + minutes(1);
  const auto limit = m + years(5);
  while (m < limit) {
    auto day_start = floor<days>(m);
    date::year_month_day ymd(day_start);
    if (!c.month(static_cast<int>(static_cast<unsigned>(ymd.month())))) {
      auto next_month = date::year_month_day(ymd.year() / ymd.month() / 1) + date::months(1);
      m = date::local_days(next_month);
      continue;
    }
    date::weekday wd(day_start);
    if (!c.day(static_cast<int>(static_cast<unsigned>(ymd.day())), static_cast<int>(wd.c_encoding()))) {
      m = day_start + days(1);
      continue;
    }
    auto tod = m - day_start;
    int h = static_cast<int>(duration_cast<hours>(tod).count());
    if (!c.hour(h)) {
      m = day_start + hours(h + 1);
      continue;
    }
    int mi = static_cast<int>(duration_cast<minutes>(tod).count() % 60);
    if (!c.minute(mi)) {
      m += minutes(1);
      continue;
    }
    date::local_seconds ls(m);
    auto info = zone_->get_info(ls);
    Slot s;
    if (info.result == date::local_info::nonexistent) s = info.second.begin;  // skipped by a clock change: at the change
    else s = Slot(ls.time_since_epoch() - info.first.offset);                 // unique, or the first of two
    if (s > t) return s;
    m += minutes(1);
  }
  throw std::runtime_error("cron '" + c.text() + "' matches no time in the next 5 years");
}

Slot Schedule::latest_at_or_before(Slot t) const {
  if (!cron_) {
    const int64_t d = spec_.every.count(), s = t.time_since_epoch().count();
    int64_t q = s >= 0 ? s / d : -((-s + d - 1) / d);
    return Slot(seconds(q * d));
  }
  // Look back over growing windows; from the first slot found, step forward to
  // the last at or before t.
  for (auto window : {hours(2), hours(49), hours(24 * 32), hours(24 * 367), hours(24 * 366 * 5)}) {
    Slot s = next_after(t - window);
    if (s > t) continue;
    for (Slot n = next_after(s); n <= t; n = next_after(s)) s = n;
    return s;
  }
  throw std::runtime_error("cron '" + cron_->text() + "' matched no time in the last 5 years");
}

seconds Schedule::interval_at(Slot slot) const {
  if (!cron_) return spec_.every;
  return next_after(slot) - slot;
}

milliseconds Schedule::grace_at(Slot slot) const {
  if (spec_.grace) return *spec_.grace;
  return interval_at(slot);
}

std::string Schedule::format(Slot slot) const {
  if (!cron_) return date::format("%FT%TZ", slot);
  auto z = date::make_zoned(zone_, slot);
  std::string out = date::format("%FT%T%Ez", z);
  if (out.size() > 6 && out.compare(out.size() - 6, 6, "+00:00") == 0 &&
      (zone_->name() == "Etc/UTC" || zone_->name() == "UTC"))
    out.replace(out.size() - 6, 6, "Z");
  return out;
}

std::string Schedule::zone_name() const { return zone_ ? std::string(zone_->name()) : "Etc/UTC"; }

std::string Schedule::describe() const {
  if (!cron_) return "every " + format_every(spec_.every);
  return "cron '" + cron_->text() + "' (" + zone_name() + ")";
}

std::string format_every(seconds every) {
  int64_t s = every.count();
  std::string out;
  if (s >= 86400 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s >= 3600) {
    out += std::to_string(s / 3600) + "h";
    s %= 3600;
  }
  if (s >= 60) {
    out += std::to_string(s / 60) + "m";
    s %= 60;
  }
  if (s > 0 || out.empty()) out += std::to_string(s) + "s";
  return out;
}

}  // namespace aetl
