// Every kind's declaration against its parser: the declared examples are accepted,
// together they use every declared field, each field's own example is accepted in
// place, and the sinks' declared defaults of the common keys are what they get.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "config/kinds.h"
#include "config/pipeline_spec.h"
#include "engine/duration.h"
#include "tests/unit/test_support.h"

using namespace aetl;

namespace {

EnvLookup test_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (name == "PGPASSWORD" || name == "MYSQL_PWD" || name == "TOKEN") return "secret";
    return std::nullopt;
  };
}

ConfigValue parse_value(std::string_view yaml) {
  ConfigValue doc = parse_config_text("v: " + std::string(yaml) + "\n", "example.yaml");
  return doc.entries.front().second;
}

/// The value at a dotted path of a mapping, or nullptr.
ConfigValue* at_path(ConfigValue& v, std::string_view path) {
  ConfigValue* node = &v;
  while (true) {
    if (node->is_sequence()) {  // a list of mappings (route's cases): any item that has it
      for (auto& item : node->items)
        if (ConfigValue* found = at_path(item, path)) return found;
      return nullptr;
    }
    if (!node->is_mapping()) return nullptr;
    size_t dot = path.find('.');
    std::string_view head = path.substr(0, dot);
    ConfigValue* next = nullptr;
    for (auto& [k, val] : node->entries)
      if (k.scalar == head) next = &val;
    if (!next || dot == std::string_view::npos) return next;
    node = next;
    path = path.substr(dot + 1);
  }
}

bool uses(const ConfigValue& example, const FieldSpec& f) {
  if (f.name.empty()) return example.is_scalar();
  if (f.name == "*") return example.is_mapping();
  ConfigValue copy = example;
  return at_path(copy, f.name) != nullptr;
}

/// Runs a kind's parser; the problems' messages (empty when accepted).
template <class Kind>
std::string parse_problems(const Kind& kind, const ConfigValue& value) {
  ConfigProblems problems(test_env());
  bool built;
  if constexpr (std::is_same_v<Kind, SinkKind>) {
    SinkCommon common;
    built = static_cast<bool>(kind.parse(value, problems, common));
  } else {
    built = static_cast<bool>(kind.parse(value, problems));
  }
  std::string out;
  for (const auto& p : problems.list()) out += p.format() + "\n";
  if (out.empty() && !built) out = "no builder and no problem";
  return out;
}

template <class Kind>
void check_kind(const Kind& kind, FieldList extra_fields) {
  INFO("kind " << kind.key);
  REQUIRE_FALSE(kind.fields.examples.empty());
  std::vector<ConfigValue> examples;
  for (std::string_view text : kind.fields.examples) {
    INFO("example " << text);
    examples.push_back(parse_value(text));
    CHECK(parse_problems(kind, examples.back()) == "");
  }
  std::vector<const FieldSpec*> fields;
  for (const FieldSpec& f : kind.fields.fields) fields.push_back(&f);
  for (const FieldSpec& f : extra_fields) fields.push_back(&f);
  for (const FieldSpec* f : fields) {
    INFO("field '" << f->name << "' example " << f->example);
    CHECK_FALSE(f->description.empty());
    REQUIRE_FALSE(f->example.empty());
    const bool common = f >= extra_fields.data() && f < extra_fields.data() + extra_fields.size();
    auto with = std::find_if(examples.begin(), examples.end(), [&](const ConfigValue& e) { return uses(e, *f); });
    if (!common) CHECK(with != examples.end());  // every field of the kind is used by an example
    if (with == examples.end())  // a common sink key: added to the first example written as a mapping
      with = std::find_if(examples.begin(), examples.end(), [](const ConfigValue& e) { return e.is_mapping(); });
    REQUIRE(with != examples.end());
    ConfigValue value = *with;
    if (f->name.empty()) {
      value = parse_value(f->example);
    } else if (f->name == "*") {
      ConfigValue k;
      k.type = ConfigValue::Type::scalar;
      k.scalar = "extra";
      value.entries.emplace_back(k, parse_value(f->example));
    } else if (ConfigValue* slot = at_path(value, f->name)) {
      *slot = parse_value(f->example);
    } else {  // a common sink key: add it
      std::string name(f->name);
      std::string yaml = "{" + name.substr(0, name.find('.')) + ": {" + name.substr(name.find('.') + 1) + ": " +
                         std::string(f->example) + "}}";
      ConfigValue added = parse_value(yaml);
      REQUIRE(value.is_mapping());
      value.entries.push_back(added.entries.front());
    }
    CHECK(parse_problems(kind, value) == "");
  }
}

}  // namespace

TEST_CASE("every source accepts its declared examples and uses every declared field", "[kinds]") {
  for (const auto& kind : source_kinds()) check_kind(kind, {});
}

TEST_CASE("every stage accepts its declared examples and uses every declared field", "[kinds]") {
  for (const auto& kind : stage_kinds()) check_kind(kind, {});
}

TEST_CASE("every sink accepts its declared examples, its own fields and the common ones", "[kinds]") {
  for (const auto& kind : sink_kinds()) check_kind(kind, sink_common_fields());
}

TEST_CASE("a sink's declared defaults of the common keys are the ones its parser sets", "[kinds]") {
  for (const auto& kind : sink_kinds()) {
    INFO("sink " << kind.key);
    auto declared = [&](std::string_view name) {
      for (const FieldDefault& d : kind.fields.common_defaults)
        if (d.name == name) return d.default_text;
      for (const FieldSpec& f : sink_common_fields())
        if (f.name == name) return f.default_text;
      FAIL("no field " << name);
      return std::string_view();
    };
    for (const FieldDefault& d : kind.fields.common_defaults) {
      bool known = false;
      for (const FieldSpec& f : sink_common_fields()) known = known || f.name == d.name;
      CHECK(known);
    }
    ConfigValue value = parse_value(kind.fields.examples.back());
    ConfigProblems problems(test_env());
    SinkCommon common;
    REQUIRE(kind.parse(value, problems, common));
    CHECK(std::to_string(common.batching.size) == declared("batch.size"));
    CHECK(static_cast<int64_t>(common.batching.bytes) == *parse_size(declared("batch.bytes")));
    CHECK(common.batching.linger == *parse_duration(declared("batch.linger")));
    CHECK(std::to_string(common.retry.max_retries) == declared("retry.max"));
    auto backoff = *parse_duration_range(declared("retry.backoff"));
    CHECK(common.retry.min_backoff == backoff.first);
    CHECK(common.retry.max_backoff == backoff.second);
  }
}

TEST_CASE("the pipeline's declared example is a good pipeline file", "[kinds]") {
  test::TempDir dir;
  // Together the examples use every field (cron and every exclude each other).
  for (const FieldSpec& f : pipeline_fields().fields) {
    INFO("field " << f.name);
    bool used = false;
    for (std::string_view text : pipeline_fields().examples) used = used || uses(parse_value(text), f);
    CHECK(used);
  }
  for (std::string_view text : pipeline_fields().examples) {
    std::ofstream(dir / "in.jsonl") << "{}\n";
    std::ofstream(dir / "p.yaml") << text << "\n";
    CHECK_NOTHROW(load_pipeline(dir / "p.yaml", test_env()));
  }
}

TEST_CASE("kinds declare each field once, with a known type and a one-line description", "[kinds]") {
  auto check = [](std::string_view kind, FieldList fields) {
    INFO("kind " << kind);
    std::set<std::string_view> seen;
    for (const FieldSpec& f : fields) {
      INFO("field " << f.name);
      CHECK(seen.insert(f.name).second);
      CHECK(f.description.find('\n') == std::string_view::npos);
      CHECK(field_type_name(f.type) != "?");
    }
  };
  for (const auto& k : source_kinds()) check(k.key, k.fields.fields);
  for (const auto& k : stage_kinds()) check(k.key, k.fields.fields);
  for (const auto& k : sink_kinds()) check(k.key, k.fields.fields);
  check("sink common", sink_common_fields());
  check("pipeline", pipeline_fields().fields);
}
