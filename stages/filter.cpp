// The `filter` stage: keeps the records an expression is true for.
//   - filter: 'status >= 400 and user.country in ["DE", "FR"]'
#include <memory>

#include "config/kinds.h"
#include "run/step_chain.h"
#include "stages/expr_config.h"

namespace aetl {
namespace {

class Filter final : public RecordStep {
 public:
  explicit Filter(std::shared_ptr<const expr::Program> program) : program_(std::move(program)) {
    for (size_t i = 0; i < step_lanes(); ++i) evals_.push_back(std::make_unique<expr::Evaluator>(*program_));
  }

  Verdict apply(size_t lane, StepRecord& rec, std::string& error) override {
    expr::Evaluator& eval = *evals_[lane];
    if (!bind_step_record(eval, rec, error)) return Verdict::fail;
    return eval.test(0) ? Verdict::keep : Verdict::drop;
  }

 private:
  std::shared_ptr<const expr::Program> program_;
  std::vector<std::unique_ptr<expr::Evaluator>> evals_;  // one per lane
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"", FieldType::expression, "required", "keep the records it is true for (anything but false and null)",
     "'status >= 400 and user.country in [\"DE\", \"FR\"]'"},
};
const std::string_view kExamples[] = {"'status >= 400'"};
}  // namespace
extern const KindFields filter_stage_fields{kFields, kExamples};

StageBuilder parse_filter_stage(const ConfigValue& node, ConfigProblems& problems) {
  if (!node.is_scalar()) {
    problems.add(node.where, "takes one expression, as in `filter: 'status >= 400'`");
    return {};
  }
  auto text = expand_scalar(node, problems, "");
  if (!text) return {};
  auto program = std::make_shared<expr::Program>();
  if (!compile_expression(*program, *text, problems, "")) return {};
  return [program](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return step_stage(run, stats, std::make_shared<Filter>(program));
  };
}

}  // namespace aetl
