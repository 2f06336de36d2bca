// The `filter` stage: keeps the records an expression is true for.
//   - filter: 'status >= 400 and user.country in ["DE", "FR"]'
#include <memory>

#include "pipeline/kinds.h"
#include "pipeline/run/pool_stage.h"
#include "pipeline/stages/expr_config.h"

namespace aetl {
namespace {

class FilterStage final : public PoolStage {
 public:
  FilterStage(RunContext& run, PartStats& stats, std::shared_ptr<const expr::Program> program)
      : PoolStage(run, stats), program_(std::move(program)) {
    for (size_t i = 0; i < lanes(); ++i) evals_.push_back(std::make_unique<expr::Evaluator>(*program_));
  }

 protected:
  void process(size_t lane, Batch& in, StageOutput& out) override {
    expr::Evaluator& eval_ = *evals_[lane];
    out.out.reserve(in.size());
    std::string error;
    for (auto& r : in) {
      if (!eval_.bind(r.data, error)) {
        out.failed.push_back({std::move(r), stats_.name, error, 1, false});
        continue;
      }
      if (eval_.test(0)) out.out.push_back(std::move(r));
      else out.dropped.push_back(r.pos);
    }
  }

 private:
  std::shared_ptr<const expr::Program> program_;
  std::vector<std::unique_ptr<expr::Evaluator>> evals_;  // one per lane
};

}  // namespace

StageBuilder parse_filter_stage(const ConfigValue& node, ConfigProblems& problems) {
  if (!node.is_scalar()) {
    problems.add(node.where, "filter takes one expression, as in `filter: 'status >= 400'`");
    return {};
  }
  auto text = expand_scalar(node, problems, "filter");
  if (!text) return {};
  auto program = std::make_shared<expr::Program>();
  if (!compile_expression(*program, *text, problems, "filter")) return {};
  return [program](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return std::make_unique<FilterStage>(run, stats, program);
  };
}

}  // namespace aetl
