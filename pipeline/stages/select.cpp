// The `select` stage: builds each record anew from named expressions.
//   - select: {id: id, url: url, country: user.country, slow: 'time_ms > 1000'}
// A bare field path is copied as written in the record (no re-serialising).
#include <memory>

#include "pipeline/json_writer.h"
#include "pipeline/kinds.h"
#include "pipeline/run/pool_stage.h"
#include "pipeline/stages/expr_config.h"

namespace aetl {
namespace {

struct Projection {
  expr::Program program;
  std::vector<std::string> key_json;  ///< `"name":` per expression, escaped once
};

class SelectStage final : public PoolStage {
 public:
  SelectStage(RunContext& run, PartStats& stats, std::shared_ptr<const Projection> projection)
      : PoolStage(run, stats), projection_(std::move(projection)) {
    for (size_t i = 0; i < lanes(); ++i) evals_.push_back(std::make_unique<expr::Evaluator>(projection_->program));
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
      Record o;
      o.pos = r.pos;
      o.data.reserve(r.data.size() + expr::kRecordPadding);
      o.data += '{';
      for (size_t i = 0; i < projection_->key_json.size(); ++i) {
        if (i) o.data += ',';
        o.data += projection_->key_json[i];
        eval_.write_json(i, o.data);
      }
      o.data += '}';
      if (o.data.capacity() - o.data.size() < expr::kRecordPadding) o.data.reserve(o.data.size() + expr::kRecordPadding);
      out.out.push_back(std::move(o));
    }
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
  }
  if (!good) return {};
  return [projection](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return std::make_unique<SelectStage>(run, stats, projection);
  };
}

}  // namespace aetl
