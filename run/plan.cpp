#include "run/plan.h"

#include <fmt/format.h>

namespace aetl {

Plan make_plan(const Pipeline& p) {
  Plan plan;
  size_t i = 0;
  const auto& st = p.stages;
  if (p.source.runs_steps)
    for (; i < st.size() && st[i].record_step; ++i) plan.in_source.push_back(i);
  while (i < st.size()) {
    Plan::Unit u{i, i, st[i].record_step};
    if (u.chain)
      while (u.last + 1 < st.size() && st[u.last + 1].record_step) ++u.last;
    plan.units.push_back(u);
    i = u.last + 1;
  }
  if (p.sinks.size() == 1 && p.sinks[0].row_step) {  // several sinks: each makes its own rows
    if (plan.units.empty() && p.source.runs_steps) plan.row_step = Plan::RowStep::in_source;
    else if (!plan.units.empty() && plan.units.back().chain) plan.row_step = Plan::RowStep::in_last_chain;
  }
  return plan;
}

std::vector<std::string> Plan::describe(const Pipeline& p) const {
  std::vector<std::string> lines;
  auto labels = [&](size_t first, size_t last) {
    std::string s;
    for (size_t k = first; k <= last; ++k) s += (s.empty() ? "" : ", ") + p.stages[k].label;
    return s;
  };
  std::string src = "source " + p.source.kind;
  if (!in_source.empty()) src += ": its lanes also run " + labels(in_source.front(), in_source.back());
  if (row_step == RowStep::in_source)
    src += std::string(in_source.empty() ? ": its lanes also make" : ", then make") + " the sink's rows (if it makes them ahead)";
  lines.push_back(src);
  for (size_t k = 0; k < units.size(); ++k) {
    const Unit& u = units[k];
    std::string line = u.chain ? (u.first == u.last ? "step " : "steps ") + labels(u.first, u.last) + ": one pool job per batch"
                               : "stage " + p.stages[u.first].label;
    if (k + 1 == units.size() && row_step == RowStep::in_last_chain) line += ", then the sink's rows (if it makes them ahead)";
    lines.push_back(line);
  }
  auto bytes = [](size_t n) {
    if (n % (1 << 20) == 0) return fmt::format("{} MiB", n >> 20);
    if (n % (1 << 10) == 0) return fmt::format("{} KiB", n >> 10);
    return fmt::format("{} bytes", n);
  };
  for (const auto& part : p.sinks) {
    std::string sink = "sink " + (p.sinks.size() > 1 ? part.name + " (" + part.kind + ")" : part.kind);
    if (row_step == RowStep::at_sink) sink += part.row_step ? ": makes its rows as it writes (no chain in front of it)" : "";
    const SinkBatching& b = part.common.batching;
    sink += fmt::format("{}batches of up to {} records or {}, a partial one waits {} ms",
                        sink.find(':') == std::string::npos ? ": " : "; ", b.size, bytes(b.bytes), b.linger.count());
    lines.push_back(sink);
  }
  if (p.dead_letter) lines.push_back("dead_letter " + p.dead_letter->kind);
  return lines;
}

}  // namespace aetl
