// The `route` stage: sends each record to the sinks of the case it matches.
//   - route:
//       cases:
//         - {name: server_errors, when: 'status >= 500', to: [alerts, archive]}
//         - {name: rest, to: archive}        # no `when`: every record
//       mode: first                          # or all: the sinks of every case that matches
//       unmatched: error                     # or drop, dead_letter
// It is the last stage: the records go from it to the pipeline's sinks (`sinks:`),
// each to those its case names (Record::routes).
#include <memory>

#include "config/kinds.h"
#include "run/step_chain.h"
#include "stages/expr_config.h"

namespace aetl {
namespace {

enum class Unmatched { error, drop, dead_letter };

struct RouteCase {
  std::string name;
  std::optional<size_t> when;  ///< the expression's index in the program; none: every record
  std::vector<std::string> to;
};

struct RouteConfig {
  expr::Program program;
  std::vector<RouteCase> cases;
  bool all = false;
  Unmatched unmatched = Unmatched::error;
};

class Route final : public RecordStep {
 public:
  Route(std::shared_ptr<const RouteConfig> cfg, std::vector<uint32_t> masks)
      : cfg_(std::move(cfg)), masks_(std::move(masks)) {
    for (size_t i = 0; i < step_lanes(); ++i) evals_.push_back(std::make_unique<expr::Evaluator>(cfg_->program));
  }

  Verdict apply(size_t lane, StepRecord& rec, std::string& error) override {
    expr::Evaluator& eval = *evals_[lane];
    if (cfg_->program.size() > 0 && !bind_step_record(eval, rec, error)) return Verdict::fail;
    uint32_t to = 0;
    for (size_t c = 0; c < cfg_->cases.size(); ++c) {
      const RouteCase& rc = cfg_->cases[c];
      if (rc.when && !eval.test(*rc.when)) continue;
      to |= masks_[c];
      if (!cfg_->all) break;
    }
    if (to) {
      rec.routes = to;
      return Verdict::keep;
    }
    if (cfg_->unmatched == Unmatched::drop) return Verdict::drop;
    error = "no case matched";
    return Verdict::fail;
  }

 private:
  std::shared_ptr<const RouteConfig> cfg_;
  std::vector<uint32_t> masks_;  // per case: its sinks' bits
  std::vector<std::unique_ptr<expr::Evaluator>> evals_;  // one per lane
};

const FieldSpec kFields[] = {
    {"cases", FieldType::section, "required", "the cases, in order; each {name, when, to}",
     "[{name: errors, when: 'status >= 500', to: [alerts, archive]}, {name: rest, to: archive}]"},
    {"cases.name", FieldType::string, "case N", "names the case in messages", "errors"},
    {"cases.when", FieldType::expression, "every record", "the records of this case", "'status >= 500'"},
    {"cases.to", FieldType::list, "required", "the sinks (names under `sinks:`) its records go to",
     "[alerts, archive]"},
    {"mode", FieldType::choice, "first",
     "first: the sinks of the first case that matches; all: of every case that matches", "all"},
    {"unmatched", FieldType::choice, "error",
     "a record no case matches: error (it fails: to the dead letter, or exit 1), drop, or dead_letter", "drop"},
};
const std::string_view kExamples[] = {
    "{cases: [{name: errors, when: 'status >= 500', to: [alerts, archive]}, {name: rest, to: archive}], mode: all, "
    "unmatched: drop}",
};

}  // namespace
extern const KindFields route_stage_fields{kFields, kExamples};

StageBuilder parse_route_stage(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) {
    problems.add(node.where, "takes a mapping with cases, as in `route: {cases: [{when: 'status >= 500', to: alerts}]}`");
    return {};
  }
  size_t before = problems.size();
  auto cfg = std::make_shared<RouteConfig>();
  const ConfigValue* cases = r.raw("cases", true);
  if (cases && (!cases->is_sequence() || cases->items.empty())) {
    problems.add(cases->where, "cases: must be a list of {name, when, to}, not " + cases->describe());
  } else if (cases) {
    for (const auto& item : cases->items) {
      ConfigReader c(item, problems, {kFields}, "cases");
      if (!c.ok()) {
        problems.add(item.where, "cases: each case is a mapping {name, when, to}, not " + item.describe());
        continue;
      }
      RouteCase rc;
      rc.name = "case " + std::to_string(cfg->cases.size() + 1);
      if (auto n = c.string("name")) rc.name = n->text;
      if (auto w = c.string("when")) rc.when = compile_expression(cfg->program, *w, problems, "cases.when");
      if (auto to = c.string_list("to", true)) {
        if (to->empty()) problems.add(item.where, "cases.to: names no sink");
        for (const auto& t : *to) {
          problems.refer("sink", t.text, t.where);
          rc.to.push_back(t.text);
        }
      }
      c.finish();
      cfg->cases.push_back(std::move(rc));
    }
  }
  if (auto m = r.choice("mode", {"first", "all"})) cfg->all = *m == "all";
  if (auto u = r.choice("unmatched", {"error", "drop", "dead_letter"})) {
    cfg->unmatched = *u == "drop" ? Unmatched::drop : *u == "dead_letter" ? Unmatched::dead_letter : Unmatched::error;
    if (cfg->unmatched == Unmatched::dead_letter) problems.refer("dead_letter", "", r.raw("unmatched")->where);
  }
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    std::vector<uint32_t> masks;
    for (const auto& rc : cfg->cases) {
      uint32_t m = 0;
      for (const auto& name : rc.to)
        for (size_t i = 0; i < run.sink_names.size() && i < 32; ++i)
          if (run.sink_names[i] == name) m |= 1u << i;
      masks.push_back(m);
    }
    return step_stage(run, stats, std::make_shared<Route>(cfg, std::move(masks)));
  };
}

}  // namespace aetl
