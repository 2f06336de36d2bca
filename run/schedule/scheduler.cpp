#include "run/schedule/scheduler.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <mutex>
#include <random>

#include <spdlog/spdlog.h>

#include "engine/shutdown.h"
#include "run/pipeline.h"
#include "run/run_context.h"

namespace aetl {
namespace {

using namespace std::chrono;

std::string format_late(milliseconds d) {
  if (d < seconds(1)) return std::to_string(d.count()) + "ms";
  return format_every(duration_cast<seconds>(d));
}

/// The run a lost lease must stop: set while the fire's loop exists.
struct RunLink {
  std::mutex mu;
  asio::io_context* io = nullptr;
  RunControl* control = nullptr;
  bool lost = false;

  void abort(const std::string& why) {
    std::lock_guard lock(mu);
    lost = true;
    if (!io) return;
    RunControl* c = control;
    asio::post(*io, [c, why] {
      spdlog::error("{}", why);
      c->request_abort();
    });
  }
};

class Scheduler {
 public:
  Scheduler(const Pipeline& p, const RunOptions& base, const Schedule& s, SlotBook& book)
      : pipeline_(p), base_(base), schedule_(s), book_(book), signals_(io_, SIGINT, SIGTERM), timer_(io_),
        owner_(this_process_owner()), rng_(std::random_device{}()) {
    signals_.async_wait([this](const asio::error_code& ec, int) {
      if (!ec) signalled_ = true;
      timer_.cancel();
    });
  }

  ScheduleOutcome once() {
    Slot now = floor<seconds>(system_clock::now());
    Slot due = schedule_.latest_at_or_before(now);
    auto last = book_.last_claimed();
    if (last && *last >= due) {
      auto h = book_.holder(due);
      spdlog::info("pipeline '{}': slot {} was run already{}; nothing to do", pipeline_.name, schedule_.format(due),
                   h ? " by " + *h : std::string());
      return outcome_;
    }
    if (last)
      if (size_t n = count_between(*last, due))
        spdlog::warn("pipeline '{}': {} earlier fire{} missed since {}", pipeline_.name, n, n == 1 ? " was" : "s were",
                     schedule_.format(*last));
    milliseconds late = duration_cast<milliseconds>(system_clock::now() - due);
    if (late > schedule_.grace_at(due)) {
      spdlog::warn("pipeline '{}': slot {} is {} late, beyond the grace of {}; skipped", pipeline_.name,
                   schedule_.format(due), format_late(late), format_late(schedule_.grace_at(due)));
      return outcome_;
    }
    once_ = true;
    fire(due);
    return outcome_;
  }

  ScheduleOutcome daemon() {
    Slot now = floor<seconds>(system_clock::now());
    Slot handled = schedule_.latest_at_or_before(now);
    if (auto last = book_.last_claimed()) handled = std::min(handled, *last);  // earlier fires missed: see below
    Slot target = Slot::min();  // the slot the last wait was for (min: none)
    spdlog::info("pipeline '{}': {}, slots kept in {}; next fire at {}", pipeline_.name, schedule_.describe(),
                 book_.where(), schedule_.format(schedule_.next_after(now)));
    while (!signalled_ && !(outcome_.ran && outcome_.last.interrupted)) {
      now = floor<seconds>(system_clock::now());
      Slot due = schedule_.latest_at_or_before(now);
      if (auto last = book_.last_claimed(); last && *last > handled) handled = std::min(*last, due);
      if (due > handled) {
        if (due == target) {
          fire(due);
        } else {
          size_t n = count_between(handled, due) + 1;
          milliseconds late = duration_cast<milliseconds>(system_clock::now() - due);
          milliseconds grace = schedule_.grace_at(due);
          std::string missed = fmt::format("pipeline '{}': {} fire{} missed (the last at {}, {} ago)", pipeline_.name, n,
                                           n == 1 ? "" : "s", schedule_.format(due), format_late(late));
          if (schedule_.spec().misfire_skip)
            spdlog::warn("{}; skipped (misfire: skip)", missed);
          else if (late > grace)
            spdlog::warn("{}; beyond the grace of {}, skipped", missed, format_late(grace));
          else {
            spdlog::warn("{}; running once now (misfire: run_once)", missed);
            fire(due);
          }
        }
        handled = due;
        target = Slot::min();
        continue;  // a fire takes time: look at the clock again
      }
      Slot next = schedule_.next_after(std::max(due, handled));
      target = next;
      milliseconds jitter{0};
      if (schedule_.spec().jitter.count() > 0)
        jitter = milliseconds(std::uniform_int_distribution<int64_t>(0, schedule_.spec().jitter.count())(rng_));
      wait_until(system_clock::time_point(next) + jitter);
    }
    if (signalled_ && !(outcome_.ran && outcome_.last.interrupted)) {
      spdlog::info("pipeline '{}': stopped between fires", pipeline_.name);
      outcome_.stopped = true;
    }
    return outcome_;
  }

 private:
  /// Slots strictly between `a` and `b` (at most 10000 counted).
  size_t count_between(Slot a, Slot b) const {
    size_t n = 0;
    for (Slot s = schedule_.next_after(a); s < b && n < 10000; s = schedule_.next_after(s)) ++n;
    return n;
  }

  /// Sleeps until `when` by the wall clock (looking again at least every minute,
  /// so a clock change or a suspend is noticed), or until a signal.
  void wait_until(system_clock::time_point when) {
    while (!signalled_) {
      auto left = when - system_clock::now();
      if (left <= system_clock::duration::zero()) return;
      bool woke = false;
      timer_.expires_after(std::min<steady_clock::duration>(duration_cast<steady_clock::duration>(left), minutes(1)));
      timer_.async_wait([&woke](const asio::error_code&) { woke = true; });
      io_.restart();
      while (!woke) io_.run_one();  // the timer, or the signal (which cancels it)
    }
  }

  /// A staying-up scheduler goes on after a fire that could not run (a database
  /// down, the state lock held by a replay): logged, and the next slot is fired.
  void fire(Slot slot) {
    if (once_) return fire_slot(slot);
    try {
      fire_slot(slot);
    } catch (const std::exception& e) {
      spdlog::error("pipeline '{}': slot {}: {}; the scheduler goes on", pipeline_.name, schedule_.format(slot),
                    e.what());
      outcome_.ran = true;
      outcome_.last = RunOutcome{};
      outcome_.last.failed = true;
    }
  }

  void fire_slot(Slot slot) {
    std::string holder;
    auto lease = book_.lock(owner_, holder);
    if (!lease) {
      if (auto h = book_.holder(slot))
        spdlog::info("pipeline '{}': slot {} is being run by {}; nothing to do", pipeline_.name, schedule_.format(slot), *h);
      else
        spdlog::warn("pipeline '{}': slot {} skipped: the pipeline is still running ({})", pipeline_.name,
                     schedule_.format(slot), holder);
      return;
    }
    if (auto h = book_.claim(slot, owner_)) {
      spdlog::info("pipeline '{}': slot {} was run already by {}; nothing to do", pipeline_.name,
                   schedule_.format(slot), *h);
      return;
    }
    spdlog::info("pipeline '{}': slot {}: run starts", pipeline_.name, schedule_.format(slot));
    auto link = std::make_shared<RunLink>();
    RunOptions o = base_;
    o.holds_lock = lease->is_state_lock();
    o.fence = lease->fence();
    o.prepare = [link, prepare = base_.prepare](RunContext& run) {
      {
        std::lock_guard lock(link->mu);
        link->io = &run.stage.io;
        link->control = &run.stage.control;
      }
      if (prepare) prepare(run);
    };
    o.ended = [link] {
      std::lock_guard lock(link->mu);
      link->io = nullptr;
      link->control = nullptr;
    };
    lease->keep([link](const std::string& why) { link->abort(why); });
    RunOutcome r = run_pipeline_spec(pipeline_, o);
    lease.reset();
    {
      std::lock_guard lock(link->mu);
      if (link->lost) r.taken_over = true;
    }
    outcome_.ran = true;
    outcome_.last = r;
    const char* how = r.interrupted ? "interrupted" : r.taken_over ? "stopped (lost its lock)" : r.failed ? "failed" : "done";
    spdlog::info("pipeline '{}': slot {}: {}", pipeline_.name, schedule_.format(slot), how);
  }

  const Pipeline& pipeline_;
  const RunOptions& base_;
  const Schedule& schedule_;
  SlotBook& book_;
  asio::io_context io_;
  asio::signal_set signals_;
  asio::steady_timer timer_;
  std::string owner_;
  std::mt19937_64 rng_;
  bool signalled_ = false;
  bool once_ = false;  ///< --once: a fire's setup error is the command's
  ScheduleOutcome outcome_;
};

}  // namespace

ScheduleOutcome run_schedule(const Pipeline& pipeline, const RunOptions& base, const Schedule& schedule,
                             SlotBook& book, bool once) {
  Scheduler s(pipeline, base, schedule, book);
  return once ? s.once() : s.daemon();
}

}  // namespace aetl
