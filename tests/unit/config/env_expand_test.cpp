#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>

#include "config/env_expand.h"

using aetl::expand_env;

namespace {

aetl::EnvLookup env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("text without variables is returned unchanged and unmarked", "[env_expand]") {
  auto r = expand_env("plain $ text and $HOME", env({}));
  CHECK(r.text == "plain $ text and $HOME");
  CHECK_FALSE(r.used_variables);
}

TEST_CASE("a set variable is substituted and the result marked as holding values", "[env_expand]") {
  auto r = expand_env("postgres://u:${PGPASS}@db/x", env({{"PGPASS", "s3cret"}}));
  CHECK(r.text == "postgres://u:s3cret@db/x");
  CHECK(r.used_variables);
}

TEST_CASE("a default applies when the variable is unset or empty", "[env_expand]") {
  CHECK(expand_env("${PORT:-5432}", env({})).text == "5432");
  CHECK(expand_env("${PORT:-5432}", env({{"PORT", ""}})).text == "5432");
  CHECK(expand_env("${PORT:-5432}", env({{"PORT", "6000"}})).text == "6000");
  CHECK(expand_env("${EMPTY:-}", env({})).text == "");
}

TEST_CASE("a set but empty variable without a default expands to nothing", "[env_expand]") {
  CHECK(expand_env("a${E}b", env({{"E", ""}})).text == "ab");
}

TEST_CASE("a double dollar is a literal dollar", "[env_expand]") {
  CHECK(expand_env("cost: $$5 ${X}", env({{"X", "y"}})).text == "cost: $5 y");
  CHECK(expand_env("$${X}", env({{"X", "y"}})).text == "${X}");
}

TEST_CASE("an unset variable without default names the variable, never a value", "[env_expand]") {
  size_t offset = 99;
  try {
    expand_env("dsn: ${DB_URL} and ${TOKEN}", env({{"TOKEN", "s3cret"}}), &offset);
    FAIL("expected an error");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) == "environment variable DB_URL is not set (use ${DB_URL:-default} for a default)");
    CHECK(offset == 5);
    CHECK(std::string(e.what()).find("s3cret") == std::string::npos);
  }
}

TEST_CASE("malformed references are errors with their offset", "[env_expand]") {
  size_t offset = 0;
  CHECK_THROWS_WITH(expand_env("x ${UNCLOSED", env({}), &offset),
                    "unterminated '${' (expected ${NAME} or ${NAME:-default})");
  CHECK(offset == 2);
  CHECK_THROWS_WITH(expand_env("${1ABC}", env({}), &offset), "invalid variable name '1ABC' in ${...}");
  CHECK_THROWS_WITH(expand_env("${}", env({}), &offset), "invalid variable name '' in ${...}");
  CHECK_THROWS_WITH(expand_env("${A-B}", env({}), &offset), "invalid variable name 'A-B' in ${...}");
}

TEST_CASE("the process environment is looked up", "[env_expand]") {
  ::setenv("AETL_TEST_VAR", "from-env", 1);
  CHECK(expand_env("${AETL_TEST_VAR}", aetl::process_environment()).text == "from-env");
  ::unsetenv("AETL_TEST_VAR");
  CHECK(expand_env("${AETL_TEST_VAR:-none}", aetl::process_environment()).text == "none");
}
