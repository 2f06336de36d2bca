#pragma once
#include <string>

namespace aetl {

struct RunContext;

/// Writes the run's counters in the Prometheus text format to `path` (written to
/// PATH.tmp, then renamed: node_exporter's textfile collector never reads half a
/// file). Logs and carries on if it cannot: metrics never fail a run.
void write_metrics(const std::string& path, const RunContext& run, const std::string& pipeline, double seconds,
                   bool success);

/// The text itself (for tests).
std::string format_metrics(const RunContext& run, const std::string& pipeline, double seconds, bool success,
                           double now_unix);

}  // namespace aetl
