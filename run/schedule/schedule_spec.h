#pragma once
#include <chrono>
#include <optional>
#include <string>

namespace aetl {

/// What a `schedule:` block (or `aetl run --every/--cron`) asks for, as written;
/// run/schedule/schedule.h checks and computes with it.
struct ScheduleSpec {
  std::string cron;                  ///< a crontab(5) expression; empty with `every`
  std::chrono::seconds every{0};     ///< fires at multiples of this since the Unix epoch (UTC); 0 with `cron`
  std::string timezone;              ///< IANA zone the cron fields are read in; empty: the system's
  bool misfire_skip = false;         ///< `misfire: skip` (default run_once)
  std::optional<std::chrono::milliseconds> grace;  ///< how late a missed fire may still run; default one interval
  std::chrono::milliseconds jitter{0};  ///< each fire starts up to this much after its slot, at random
  std::string redis_url;             ///< slots and the run lock in Redis (many hosts); empty: the state store
  std::chrono::milliseconds lock_ttl{30000};  ///< the Redis run lock's expiry, renewed every third of it
  bool given() const { return !cron.empty() || every.count() > 0; }
};

}  // namespace aetl
