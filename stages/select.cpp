// The `select` stage: builds each record anew from named expressions.
//   - select: {id: id, url: url, country: user.country, slow: 'time_ms > 1000'}
// A bare field path is copied as written in the record (no re-serialising; a
// string with escapes is re-escaped one way). The values are left for the next
// step (StepRecord::projected), which then need not parse the record select wrote.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>

#include "engine/json_writer.h"
#include "config/kinds.h"
#include "run/step_chain.h"
#include "stages/expr_config.h"

namespace aetl {
namespace {

struct Projection {
  expr::Program program;
  std::vector<std::string> names;     ///< the output fields
  std::vector<std::string> key_json;  ///< `"name":` per expression, escaped once
  size_t size_hint = 0;               ///< room reserved for an output record
};

/// A computed value as a step would read it back from the text select wrote:
/// a non-finite number is written null; a whole one (5.0) as 5, an integer.
expr::Value as_read_back(const expr::Value& v) {
  if (v.type != expr::Value::Type::number || !v.raw.empty()) return v;
  if (!std::isfinite(v.d)) return expr::Value::null_value();
  char digits[32];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v.d);  // as append_value_json writes it
  bool integer = std::all_of(digits, end, [](char c) { return c == '-' || (c >= '0' && c <= '9'); });
  if (integer && std::fabs(v.d) < 9e18) return expr::Value::integer_value(static_cast<int64_t>(v.d));
  return v;
}

class Select final : public RecordStep {
 public:
  explicit Select(std::shared_ptr<const Projection> projection) : projection_(std::move(projection)) {
    for (size_t i = 0; i < step_lanes(); ++i) lanes_.push_back(std::make_unique<Lane>(*projection_));
  }

  Verdict apply(size_t lane, StepRecord& rec, std::string& error) override {
    Lane& l = *lanes_[lane];
    if (!bind_step_record(l.eval, rec, error)) return Verdict::fail;
    std::string o;
    o.reserve(projection_->size_hint + expr::kRecordPadding);
    o += '{';
    for (size_t i = 0; i < projection_->key_json.size(); ++i) {
      if (i) o += ',';
      o += projection_->key_json[i];
      expr::Value v = l.eval.eval(i);
      if (v.missing) v = expr::Value::null_value();  // written as null: a field that is there
      expr::append_value_json(v, o);
      l.values[i] = as_read_back(v);
    }
    o += '}';
    if (o.capacity() - o.size() < expr::kRecordPadding) o.reserve(o.size() + expr::kRecordPadding);
    // The values may point into the record's old text (an object, a raw token):
    // it is kept until the lane's next record, when the next step is done with them.
    // Text held inside the string object itself (short) moves with it: not projected.
    const char* at = rec.owned.data();
    bool inside = at >= reinterpret_cast<const char*>(&rec.owned) && at < reinterpret_cast<const char*>(&rec.owned + 1);
    bool stable = !rec.owns_text() || !inside;
    if (rec.owns_text()) l.kept = std::move(rec.owned);
    rec.replace(std::move(o));
    if (stable) rec.projected = &l.projected;
    return Verdict::keep;
  }

 private:
  struct Lane {
    explicit Lane(const Projection& p)
        : eval(p.program, /*exact_numbers=*/true), values(p.names.size()), projected{&p.names, values.data()} {}
    expr::Evaluator eval;
    std::vector<expr::Value> values;
    expr::ProjectedRecord projected;
    std::string kept;  // the text the values may point into
  };
  std::shared_ptr<const Projection> projection_;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"*", FieldType::expression, "", "each key is an output field, its value the expression that computes it",
     "'lower(user.country)'"},
};
const std::string_view kExamples[] = {"{id: id, country: 'lower(user.country)'}"};
}  // namespace
extern const KindFields select_stage_fields{kFields, kExamples};

StageBuilder parse_select_stage(const ConfigValue& node, ConfigProblems& problems) {
  if (!node.is_mapping() || node.entries.empty()) {
    problems.add(node.where, "takes a mapping of output field: expression, as in `select: {id: id, country: user.country}`");
    return {};
  }
  auto projection = std::make_shared<Projection>();
  bool good = true;
  for (const auto& [key, value] : node.entries) {
    auto text = expand_scalar(value, problems, key.scalar);
    if (!text || !compile_expression(projection->program, *text, problems, key.scalar)) {
      good = false;
      continue;
    }
    std::string k;
    append_json_string(k, key.scalar);
    projection->names.push_back(key.scalar);
    projection->key_json.push_back(k + ":");
    projection->size_hint += k.size() + 1 + 24;
  }
  if (!good) return {};
  return [projection](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return step_stage(run, stats, std::make_shared<Select>(projection));
  };
}

}  // namespace aetl
