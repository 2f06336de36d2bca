#include "run/metrics.h"

#include <chrono>
#include <cstdio>
#include <fstream>

#include <spdlog/spdlog.h>

#include "run/run_context.h"

namespace aetl {
namespace {

std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string format_metrics(const RunContext& run, const std::string& pipeline, double seconds, bool success,
                           double now_unix) {
  std::string out;
  std::string p = label_value(pipeline);
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    for (const auto& part : run.parts)
      out += fmt::format("{}{{pipeline=\"{}\",part=\"{}\"}} {}\n", name, p, label_value(part->name), value(*part));
  };
  family("aetl_records_in_total", "counter", "Records received by each part of the pipeline.",
         [](const PartStats& s) { return s.in; });
  family("aetl_records_out_total", "counter", "Records passed on (sinks: written) by each part.",
         [](const PartStats& s) { return s.out; });
  family("aetl_records_dropped_total", "counter", "Records a filter dropped.",
         [](const PartStats& s) { return s.dropped; });
  family("aetl_records_failed_total", "counter", "Records that failed (dead letter, or failed without one).",
         [](const PartStats& s) { return s.failed; });
  family("aetl_busy_seconds_total", "counter", "Time each part spent working on batches.",
         [](const PartStats& s) { return fmt::format("{:.6f}", s.busy_seconds); });
  bool any_events = false;
  for (const auto& part : run.parts) any_events = any_events || !part->events.empty();
  if (any_events) {
    out += "# HELP aetl_part_events_total Events a part counts of its own (entries acked, claimed, ...).\n"
           "# TYPE aetl_part_events_total counter\n";
    for (const auto& part : run.parts)
      for (const auto& [event, n] : part->events)
        out += fmt::format("aetl_part_events_total{{pipeline=\"{}\",part=\"{}\",event=\"{}\"}} {}\n", p,
                           label_value(part->name), label_value(event), n);
  }
  bool any_flushes = false;
  for (const auto& part : run.parts) any_flushes = any_flushes || !part->flushes.empty();
  if (any_flushes) {
    out += "# HELP aetl_sink_flushes_total Writes of each sink by why they went: size, bytes, linger, end (of input), "
           "stop.\n# TYPE aetl_sink_flushes_total counter\n";
    for (const auto& part : run.parts)
      for (const auto& [reason, n] : part->flushes)
        out += fmt::format("aetl_sink_flushes_total{{pipeline=\"{}\",part=\"{}\",reason=\"{}\"}} {}\n", p,
                           label_value(part->name), reason, n);
  }
  bool any_limits = false;
  for (const auto& part : run.parts) any_limits = any_limits || !part->host_limits.empty();
  if (any_limits) {
    out += "# HELP aetl_host_concurrency_limit With concurrency: auto, each host's current limit of requests in "
           "flight.\n# TYPE aetl_host_concurrency_limit gauge\n";
    for (const auto& part : run.parts)
      for (const auto& [host, n] : part->host_limits)
        out += fmt::format("aetl_host_concurrency_limit{{pipeline=\"{}\",part=\"{}\",host=\"{}\"}} {}\n", p,
                           label_value(part->name), label_value(host), n);
  }
  out += fmt::format(
      "# HELP aetl_run_duration_seconds How long the last run took (while a run lasts: so far).\n# TYPE aetl_run_duration_seconds gauge\n"
      "aetl_run_duration_seconds{{pipeline=\"{}\"}} {:.3f}\n",
      p, seconds);
  out += fmt::format(
      "# HELP aetl_run_success Whether the last run ended without errors (1) or not (0); while a run lasts, whether it has had none so far.\n"
      "# TYPE aetl_run_success gauge\naetl_run_success{{pipeline=\"{}\"}} {}\n",
      p, success ? 1 : 0);
  out += fmt::format(
      "# HELP aetl_run_last_timestamp_seconds When the last run ended (Unix time); while a run lasts, when this was written.\n"
      "# TYPE aetl_run_last_timestamp_seconds gauge\naetl_run_last_timestamp_seconds{{pipeline=\"{}\"}} {:.3f}\n",
      p, now_unix);
  return out;
}

void write_metrics(const std::string& path, const RunContext& run, const std::string& pipeline, double seconds,
                   bool success) {
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string text = format_metrics(run, pipeline, seconds, success, now);
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    if (!f) {
      spdlog::error("{}: cannot write the metrics file", tmp);
      std::remove(tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    spdlog::error("{}: cannot rename the metrics file into place", path);
    std::remove(tmp.c_str());
  }
}

}  // namespace aetl
