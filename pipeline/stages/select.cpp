// The `select` stage: builds each record anew from named expressions.
//   - select: {id: id, url: url, country: user.country, slow: 'time_ms > 1000'}
// A bare field path is copied as written in the record (no re-serialising).
#include <memory>

#include "pipeline/json_writer.h"
#include "pipeline/kinds.h"
#include "pipeline/run/step_chain.h"
#include "pipeline/stages/expr_config.h"

namespace aetl {
namespace {

struct Projection {
  expr::Program program;
  std::vector<std::string> key_json;  ///< `"name":` per expression, escaped once
  size_t size_hint = 0;               ///< room reserved for an output record
};

class Select final : public RecordStep {
 public:
  explicit Select(std::shared_ptr<const Projection> projection) : projection_(std::move(projection)) {
    for (size_t i = 0; i < step_lanes(); ++i) evals_.push_back(std::make_unique<expr::Evaluator>(projection_->program));
  }

  Verdict apply(size_t lane, StepRecord& rec, std::string& error) override {
    expr::Evaluator& eval = *evals_[lane];
    if (!eval.bind(rec.text, rec.padded, error)) return Verdict::fail;
    std::string o;
    o.reserve(projection_->size_hint + expr::kRecordPadding);
    o += '{';
    for (size_t i = 0; i < projection_->key_json.size(); ++i) {
      if (i) o += ',';
      o += projection_->key_json[i];
      eval.write_json(i, o);
    }
    o += '}';
    if (o.capacity() - o.size() < expr::kRecordPadding) o.reserve(o.size() + expr::kRecordPadding);
    rec.replace(std::move(o));
    return Verdict::keep;
  }

 private:
  std::shared_ptr<const Projection> projection_;
  std::vector<std::unique_ptr<expr::Evaluator>> evals_;  // one per lane
};

}  // namespace

StageBuilder parse_select_stage(const ConfigValue& node, ConfigProblems& problems) {
  if (!node.is_mapping() || node.entries.empty()) {
    problems.add(node.where, "select takes a mapping of output field: expression, as in `select: {id: id, country: user.country}`");
    return {};
  }
  auto projection = std::make_shared<Projection>();
  bool good = true;
  for (const auto& [key, value] : node.entries) {
    auto text = expand_scalar(value, problems, "select." + key.scalar);
    if (!text || !compile_expression(projection->program, *text, problems, "select." + key.scalar)) {
      good = false;
      continue;
    }
    std::string k;
    append_json_string(k, key.scalar);
    projection->key_json.push_back(k + ":");
    projection->size_hint += k.size() + 1 + 24;
  }
  if (!good) return {};
  return [projection](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return step_stage(run, stats, std::make_shared<Select>(projection));
  };
}

}  // namespace aetl
