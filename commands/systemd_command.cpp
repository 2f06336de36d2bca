#include "commands/systemd_command.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/logging.h"
#include "commands/run_command.h"
#include "config/config_error.h"
#include "config/pipeline_spec.h"
#include "engine/setup_error.h"
#include "run/schedule/schedule.h"

namespace aetl {
namespace {

struct SystemdFlags {
  std::string file;
  std::string every;
  std::string cron;
  std::string state;
  std::string output_dir;
  std::string unit;
  bool user = false;
};

/// The values set in `bits` from `lo` to `hi` as a systemd calendar field:
/// "*", "0/15", "1..5", "0,30"; `names` for days of the week.
template <size_t N>
std::string calendar_field(const std::bitset<N>& bits, int lo, int hi, const char* const* names = nullptr) {
  std::vector<int> v;
  for (int i = lo; i <= hi; ++i)
    if (bits[static_cast<size_t>(i)]) v.push_back(i);
  if (static_cast<int>(v.size()) == hi - lo + 1 && !names) return "*";
  auto name = [&](int i) { return names ? std::string(names[i]) : (i < 10 && hi >= 10 ? "0" : "") + std::to_string(i); };
  // A regular step that runs to the end of the range: start/step.
  if (!names && v.size() >= 2) {
    int step = v[1] - v[0];
    bool regular = true;
    for (size_t i = 1; i < v.size(); ++i) regular = regular && v[i] - v[i - 1] == step;
    if (regular && v.back() + step > hi && step > 1) return name(v[0]) + "/" + std::to_string(step);
  }
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += j - i >= 2 ? name(v[i]) + ".." + name(v[j]) : name(v[i]);
    if (j - i == 1) out += "," + name(v[j]);
    i = j + 1;
  }
  return out;
}

/// OnCalendar= lines for the schedule; throws SetupError where systemd cannot say it.
std::vector<std::string> on_calendar(const Schedule& s) {
  if (!s.cron()) {
    int64_t e = s.spec().every.count();
    std::string spec;
    if (e < 60 && 60 % e == 0) spec = "*-*-* *:*:00/" + std::to_string(e);
    else if (e % 60 == 0 && e < 3600 && 60 % (e / 60) == 0) spec = "*-*-* *:00/" + std::to_string(e / 60) + ":00";
    else if (e % 3600 == 0 && e < 86400 && 24 % (e / 3600) == 0) spec = "*-*-* 00/" + std::to_string(e / 3600) + ":00:00";
    else if (e == 86400) spec = "*-*-* 00:00:00";
    else
      throw SetupError("every " + format_every(s.spec().every) +
                       ": a systemd timer fires at calendar times, and the multiples of this do not divide a day "
                       "evenly; use a cron expression");
    return {spec + " UTC"};
  }
  // systemd's weeks start on Monday (Sun..Tue is refused): Sunday is day 7 here.
  static const char* const days[] = {"", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  const CronExpr& c = *s.cron();
  std::bitset<8> week;
  for (int d = 0; d < 7; ++d) week[static_cast<size_t>(d == 0 ? 7 : d)] = c.weekdays_[static_cast<size_t>(d)];
  std::string time = calendar_field(c.hours_, 0, 23) + ":" + calendar_field(c.minutes_, 0, 59) + ":00";
  std::string month = calendar_field(c.months_, 1, 12);
  std::string zone = " " + s.zone_name();
  auto line = [&](const std::string& dow, const std::string& dom) {
    return (dow.empty() ? "" : dow + " ") + "*-" + month + "-" + dom + " " + time + zone;
  };
  // The fields' days as they are (`*/2` is every other day, not every day).
  std::string dom = calendar_field(c.days_, 1, 31);
  std::string dow = (week >> 1).count() == 7 ? "" : calendar_field(week, 1, 7, days);
  // cron: with a day field that starts with `*` both must match (one line); else either (a line each)
  if (c.dom_star_ || c.dow_star_) return {line(dow, dom)};
  return {line("", dom), line(dow, "*")};
}

std::string unit_name(const std::string& pipeline) {
  std::string out = "aetl-";
  for (char c : pipeline) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '-';
  return out;
}

/// A word for ExecStart=: quoted when it holds anything but plain characters.
std::string exec_word(const std::string& w) {
  bool plain = !w.empty();
  for (char c : w) plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || std::string_view("/._-=:+@,").find(c) != std::string_view::npos);
  if (plain) return w;
  std::string out = "\"";
  for (char c : w) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '%') out += '%';  // systemd specifiers
    out += c;
  }
  return out + "\"";
}

std::string self_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("aetl") : p.string();
}

}  // namespace

std::function<ExitCode()> setup_systemd_command(CLI::App& app) {
  auto f = std::make_shared<SystemdFlags>();
  app.add_option("pipeline", f->file, "The pipeline file (YAML)")->required();
  app.add_option("--every", f->every, "The schedule, instead of the pipeline's schedule: (as aetl run --every)");
  app.add_option("--cron", f->cron, "The schedule, instead of the pipeline's schedule: (as aetl run --cron)");
  app.add_option("--state", f->state, "The state store the service's runs use (as aetl run --state)");
  app.add_option("--unit", f->unit, "The units' name (default: aetl-PIPELINE)");
  app.add_option("-o,--output-dir", f->output_dir,
                 "Write UNIT.service and UNIT.timer into this directory instead of printing them");
  app.add_flag("--user", f->user, "For a user's systemd (systemctl --user): WantedBy=default.target");
  return [f]() -> ExitCode {
    auto loaded = load_pipeline_or_report(f->file);
    if (!loaded) return ExitCode::usage;
    PipelineSpec& spec = *loaded;
    ScheduleSpec sched = command_line_schedule(spec.schedule, f->every, f->cron);
    if (!sched.given())
      throw SetupError(f->file + ": the pipeline has no schedule: (add one, or give --every or --cron)");
    Schedule schedule = [&] {
      try {
        return Schedule(sched);
      } catch (const std::exception& e) {
        throw SetupError(std::string(f->cron.empty() ? "--every: " : "--cron: ") + e.what());
      }
    }();
    std::string unit = f->unit.empty() ? unit_name(spec.name) : f->unit;
    auto pipeline = std::filesystem::absolute(f->file).lexically_normal();
    std::string exec = exec_word(self_path()) + " run --once -q";
    if (!f->every.empty()) exec += " --every " + exec_word(f->every);
    if (!f->cron.empty()) exec += " --cron " + exec_word(f->cron);
    if (!f->state.empty()) exec += " --state " + exec_word(std::filesystem::absolute(f->state).string());
    exec += " " + exec_word(pipeline.string());

    std::string service =
        "[Unit]\n"
        "Description=aetl pipeline " + spec.name + " (" + schedule.describe() + ")\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "WorkingDirectory=" + exec_word(pipeline.parent_path().string()) + "\n"
        "# --once runs the slot due now, unless another run, host or timer has: a\n"
        "# catch-up start or a second host never runs a slot twice.\n"
        "ExecStart=" + exec + "\n"
        "# SIGTERM stops the run as Ctrl-C does: work in flight finishes, commits are kept.\n"
        "KillSignal=SIGTERM\n"
        "TimeoutStopSec=30\n";
    std::string timer =
        "[Unit]\n"
        "Description=Schedule of aetl pipeline " + spec.name + "\n"
        "\n"
        "[Timer]\n";
    for (const auto& c : on_calendar(schedule)) timer += "OnCalendar=" + c + "\n";
    timer +=
        "# A fire missed while the machine was off runs once at the next boot.\n"
        "Persistent=true\n"
        "AccuracySec=1s\n";
    if (sched.jitter.count() > 0)
      timer += "RandomizedDelaySec=" + std::to_string((sched.jitter.count() + 999) / 1000) + "s\n";
    timer += "Unit=" + unit + ".service\n"
             "\n"
             "[Install]\n"
             "WantedBy=" + std::string(f->user ? "default.target" : "timers.target") + "\n";

    if (f->output_dir.empty()) {
      std::printf("# %s.service\n%s\n# %s.timer\n%s", unit.c_str(), service.c_str(), unit.c_str(), timer.c_str());
      std::printf("\n# install: put both in %s, then\n#   systemctl%s daemon-reload && systemctl%s enable --now %s.timer\n",
                  f->user ? "~/.config/systemd/user/" : "/etc/systemd/system/", f->user ? " --user" : "",
                  f->user ? " --user" : "", unit.c_str());
      return ExitCode::ok;
    }
    std::error_code ec;
    std::filesystem::create_directories(f->output_dir, ec);
    for (const auto& [name, text] : {std::pair{unit + ".service", service}, std::pair{unit + ".timer", timer}}) {
      std::string path = (std::filesystem::path(f->output_dir) / name).string();
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << text;
      out.flush();
      if (!out) throw SetupError(path + ": cannot write");
      logging::print_line("wrote " + path);
    }
    return ExitCode::ok;
  };
}

}  // namespace aetl
