#include <catch2/catch.hpp>

#include "config/config_reader.h"
#include "config/config_tree.h"

using namespace aetl;

namespace {

std::string first_problem(const std::string& yaml, ConfigLimits limits = {}) {
  try {
    parse_config_text(yaml, "p.yaml", limits);
  } catch (const ConfigError& e) {
    return e.problems().front().format();
  }
  return "";
}

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("the config tree keeps lines and columns", "[config_tree]") {
  auto root = parse_config_text("name: x\nsource:\n  lines: {paths: [a, 'b']}\n", "p.yaml");
  REQUIRE(root.is_mapping());
  const ConfigValue* source = root.find("source");
  REQUIRE(source);
  const ConfigValue* lines = source->find("lines");
  REQUIRE(lines);
  CHECK(lines->where.line == 3);
  CHECK(lines->where.column == 10);
  const ConfigValue* paths = lines->find("paths");
  REQUIRE(paths->is_sequence());
  CHECK(paths->items[1].scalar == "b");
  CHECK(paths->items[1].quoted);
  CHECK(paths->items[1].where.column == 22);
  CHECK(paths->items[1].verbatim);
  CHECK(paths->items[1].column_shift == 1);
}

TEST_CASE("YAML syntax errors, duplicate keys and several documents are refused", "[config_tree]") {
  CHECK(first_problem("a: [1, 2\n").rfind("p.yaml:", 0) == 0);
  CHECK(first_problem("a: 1\nb: 2\na: 3\n") == "p.yaml:3:1: duplicate key 'a' (first at line 1)");
  CHECK(first_problem("a: 1\n---\nb: 2\n").find("more than one YAML document") != std::string::npos);
  CHECK(first_problem("") == "p.yaml:1:1: the file is empty");
  CHECK(first_problem("[a]: 1\n").find("mapping key must be a plain string") != std::string::npos);
}

TEST_CASE("explicit YAML tags are refused where they are written", "[config_tree]") {
  CHECK(first_problem("a: !custom x\n") == "p.yaml:1:4: YAML tag '!custom' is not supported (a pipeline file is plain YAML)");
  CHECK(first_problem("a:\n  b: !!python/object {x: 1}\n") ==
        "p.yaml:2:6: YAML tag '!!python/object' is not supported (a pipeline file is plain YAML)");
  CHECK(first_problem("a: [!!str 1]\n") == "p.yaml:1:5: YAML tag '!!str' is not supported (a pipeline file is plain YAML)");
  CHECK(first_problem("a: 'quoted'\nb: |\n  block\nc: plain\n").empty());
}

TEST_CASE("aliases cannot blow up memory", "[config_tree]") {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = c;
  }
  CHECK(first_problem(bomb).find("nodes once aliases are expanded") != std::string::npos);
  // small aliases are fine
  auto root = parse_config_text("x: &d {size: 10}\ny: *d\n", "p.yaml");
  CHECK(root.find("y")->find("size")->scalar == "10");
}

TEST_CASE("deep nesting is refused", "[config_tree]") {
  ConfigLimits limits;
  limits.max_depth = 8;
  CHECK(first_problem(std::string(20, '[') + std::string(20, ']'), limits).find("nested more than 8") !=
        std::string::npos);
}

namespace {
const FieldSpec kSinkFields[] = {
    {"path", FieldType::string, "required", "", "a"},
    {"table", FieldType::string, "required", "", "t"},
    {"size", FieldType::integer, "", "", "1"},
    {"linger", FieldType::duration, "", "", "1s"},
    {"wal", FieldType::boolean, "", "", "true"},
    {"format", FieldType::choice, "", "", "json"},
    {"retry.max", FieldType::integer, "", "", "1"},
    {"retry.backoff", FieldType::duration_range, "", "", "1s..2s"},
    {"batch.size", FieldType::integer, "", "", "1"},
    {"dsn", FieldType::string, "", "", "x"},
    {"bad", FieldType::string, "", "", "x"},
};
}  // namespace

TEST_CASE("a reader reports unknown keys, types and bad values with locations and whole paths", "[config_reader]") {
  auto root = parse_config_text(
      "path: out.db\nbatchsize: 10\nsize: ten\nlinger: soon\nwal: maybe\nformat: jsn\nretry: {max: 3, backof: 1s}\n"
      "batch: {sise: 1}\n",
      "p.yaml");
  ConfigProblems problems(env_of({}));
  ProblemContext context(problems, "sink sqlite");
  ConfigReader r(root, problems, {kSinkFields});
  CHECK(r.string("path")->text == "out.db");
  CHECK_FALSE(r.integer("size", 1, 100));
  CHECK_FALSE(r.duration("linger"));
  CHECK_FALSE(r.boolean("wal"));
  CHECK_FALSE(r.choice("format", {"json", "text", "csv"}));
  CHECK_FALSE(r.retry("retry", RetryPolicy{}));
  CHECK_FALSE(r.string("table", true));
  if (auto b = r.section("batch")) b->finish();
  r.finish();
  std::vector<std::string> got;
  for (const auto& p : problems.list()) got.push_back(p.format());
  CHECK(got == std::vector<std::string>{
                   "p.yaml:3:7: sink sqlite: size: must be a whole number, not 'ten'",
                   "p.yaml:4:9: sink sqlite: linger: bad duration 'soon' (examples: 250ms, 1.5s, 2m)",
                   "p.yaml:5:6: sink sqlite: wal: must be true or false",
                   "p.yaml:6:9: sink sqlite: format: must be one of json, text, csv, not 'jsn' (did you mean 'json'?)",
                   "p.yaml:7:17: sink sqlite: unknown key 'retry.backof' (did you mean 'retry.backoff'?)",
                   "p.yaml:1:1: sink sqlite: missing required key 'table'",
                   "p.yaml:8:9: sink sqlite: unknown key 'batch.sise' (did you mean 'batch.size'?)",
                   "p.yaml:2:1: sink sqlite: unknown key 'batchsize' (did you mean 'batch.size'?)",
               });
}

TEST_CASE("a reader refuses to read what its kind did not declare", "[config_reader]") {
  auto root = parse_config_text("path: out.db\nsize: 3\nwal: true\n", "p.yaml");
  ConfigProblems problems(env_of({}));
  ConfigReader r(root, problems, {kSinkFields});
  CHECK_THROWS_AS(r.string("paht"), std::logic_error);        // not declared
  CHECK_THROWS_AS(r.duration("size"), std::logic_error);      // declared as a whole number
  CHECK_THROWS_AS(r.string("dsn", true), std::logic_error);   // not declared as required
  CHECK_THROWS_AS(r.raw("retry.max.x"), std::logic_error);    // below a leaf
  CHECK(r.string("path")->text == "out.db");
  CHECK(*r.integer("size", 0, 10) == 3);
  // `wal` is declared and present but nobody read it: its value would be ignored.
  CHECK_THROWS_AS(r.finish(), std::logic_error);
}

TEST_CASE("variables expand and their values never reach messages", "[config_reader]") {
  auto root = parse_config_text("dsn: 'postgres://u:${PW}@h/db'\nsize: ${N}\nbad: ${UNSET}\n", "p.yaml");
  ConfigProblems problems(env_of({{"PW", "hunter2"}, {"N", "many"}}));
  ConfigReader r(root, problems, {kSinkFields});
  auto dsn = r.string("dsn");
  REQUIRE(dsn);
  CHECK(dsn->text == "postgres://u:hunter2@h/db");
  CHECK(dsn->secret);
  CHECK_FALSE(r.integer("size", 0, 10));
  CHECK_FALSE(r.string("bad"));
  REQUIRE(problems.size() == 2);
  for (const auto& p : problems.list()) CHECK(p.format().find("many") == std::string::npos);
  CHECK(problems.list()[0].format() == "p.yaml:2:7: size: must be a whole number");
  CHECK(problems.list()[1].format().find("UNSET") != std::string::npos);
}
