// The `set` stage: adds or replaces fields, keeping the rest of the record as written.
//   - set: {country: upper(user.country), user.seen_at: now()}
// Expressions see the record as it came in. A target whose parent is missing or
// not an object gets a new object there.
#include <memory>

#include "engine/json_scan.h"
#include "engine/json_writer.h"
#include "config/kinds.h"
#include "run/step_chain.h"
#include "stages/expr_config.h"

namespace aetl {
namespace {

struct Target {
  std::string key;
  std::string key_json;  ///< `"key":`
  int expr = -1;         ///< a value is assigned here
  std::vector<Target> kids;
};

struct Assignments {
  expr::Program program;
  std::vector<Target> roots;
};

void add_target(std::vector<Target>& level, const expr::Path& path, size_t depth, int expr) {
  const std::string& key = path.segments[depth].key;
  Target* t = nullptr;
  for (auto& x : level)
    if (x.key == key) t = &x;
  if (!t) {
    level.push_back({key, {}, -1, {}});
    t = &level.back();
    append_json_string(t->key_json, key);
    t->key_json += ':';
  }
  if (depth + 1 == path.segments.size()) t->expr = expr;
  else add_target(t->kids, path, depth + 1, expr);
}

class Set final : public RecordStep {
 public:
  explicit Set(std::shared_ptr<const Assignments> a) : a_(std::move(a)) {
    for (size_t i = 0; i < step_lanes(); ++i) lanes_.push_back(std::make_unique<Lane>(a_->program));
  }

  Verdict apply(size_t lane, StepRecord& rec, std::string& error) override {
    Lane& l = *lanes_[lane];
    if (!bind_step_record(l.eval, rec, error)) return Verdict::fail;
    for (size_t i = 0; i < l.values.size(); ++i) {
      l.values[i].clear();
      l.eval.write_json(i, l.values[i]);
    }
    std::string o;
    o.reserve(rec.text.size() + 64 + expr::kRecordPadding);
    rewrite(l.values, rec.text, 0, a_->roots, o);
    if (o.capacity() - o.size() < expr::kRecordPadding) o.reserve(o.size() + expr::kRecordPadding);
    rec.replace(std::move(o));
    return Verdict::keep;
  }

 private:
  static void write_new(const std::vector<std::string>& values_, const Target& t, std::string& out) {
    if (t.expr >= 0 && t.kids.empty()) {
      out += values_[static_cast<size_t>(t.expr)];
      return;
    }
    out += '{';
    bool first = true;
    for (const auto& k : t.kids) {
      if (!first) out += ',';
      first = false;
      out += k.key_json;
      write_new(values_, k, out);
    }
    out += '}';
  }

  static void rewrite(const std::vector<std::string>& values_, std::string_view text, size_t start,
                      const std::vector<Target>& level, std::string& out) {
    std::vector<char> seen(level.size(), 0);
    out += '{';
    bool first = true;
    for_each_member(text, start, [&](const JsonMember& m) {
      const Target* t = nullptr;
      std::string decoded;
      std::string_view key = m.raw_key;
      if (key.find('\\') != std::string_view::npos) key = decoded = json_unescape(key);
      for (size_t i = 0; i < level.size(); ++i) {
        if (level[i].key != key) continue;
        if (seen[i]) return;  // a duplicate of a replaced key: dropped, so no reader sees the old value
        t = &level[i];
        seen[i] = 1;
      }
      if (!first) out += ',';
      first = false;
      if (!t) {
        out.append(text.substr(m.begin, m.value_end - m.begin));
        return;
      }
      out += t->key_json;
      if (t->expr >= 0) out += values_[static_cast<size_t>(t->expr)];
      else if (text[m.value_begin] == '{') rewrite(values_, text, m.value_begin, t->kids, out);
      else write_new(values_, *t, out);
    });
    for (size_t i = 0; i < level.size(); ++i) {
      if (seen[i]) continue;
      if (!first) out += ',';
      first = false;
      out += level[i].key_json;
      write_new(values_, level[i], out);
    }
    out += '}';
  }

  struct Lane {
    explicit Lane(const expr::Program& p) : eval(p, /*exact_numbers=*/true), values(p.size()) {}
    expr::Evaluator eval;
    std::vector<std::string> values;
  };
  std::shared_ptr<const Assignments> a_;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"*", FieldType::expression, "", "each key is a field path (a.b.c) to add or replace, its value the expression",
     "'upper(country)'"},
};
const std::string_view kExamples[] = {"{country: 'upper(country)', geo.checked: true}"};
}  // namespace
extern const KindFields set_stage_fields{kFields, kExamples};

StageBuilder parse_set_stage(const ConfigValue& node, ConfigProblems& problems) {
  if (!node.is_mapping() || node.entries.empty()) {
    problems.add(node.where, "takes a mapping of field: expression, as in `set: {country: upper(country)}`");
    return {};
  }
  auto a = std::make_shared<Assignments>();
  bool good = true;
  for (const auto& [key, value] : node.entries) {
    expr::Path path;
    try {
      path = expr::parse_path(key.scalar);
    } catch (const expr::ParseError& e) {
      problems.add(key.where, "'" + key.scalar + "' is not a field path: " + e.what());
      good = false;
      continue;
    }
    bool has_index = path.segments.empty();
    for (const auto& s : path.segments) has_index = has_index || s.index >= 0;
    if (has_index) {
      problems.add(key.where, "'" + key.scalar + "': targets are field names (a.b.c), not $ or [index]");
      good = false;
      continue;
    }
    auto text = expand_scalar(value, problems, key.scalar);
    if (!text) {
      good = false;
      continue;
    }
    auto index = compile_expression(a->program, *text, problems, key.scalar);
    if (!index) {
      good = false;
      continue;
    }
    add_target(a->roots, path, 0, static_cast<int>(*index));
  }
  if (!good) return {};
  return [a](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return step_stage(run, stats, std::make_shared<Set>(a));
  };
}

}  // namespace aetl
