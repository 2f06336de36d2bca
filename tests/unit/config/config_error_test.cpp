#include <catch2/catch.hpp>

#include "config/config_error.h"

TEST_CASE("a config problem prints as file:line:col: message", "[config_error]") {
  aetl::ConfigProblem p{{"pipeline.yaml", 12, 5}, "unknown sink 'sqlte', did you mean 'sqlite'?"};
  CHECK(p.format() == "pipeline.yaml:12:5: unknown sink 'sqlte', did you mean 'sqlite'?");
}

TEST_CASE("a config error carries every problem, one per line", "[config_error]") {
  aetl::ConfigError e({{{"p.yaml", 1, 1}, "first"}, {{"p.yaml", 3, 7}, "second"}});
  CHECK(e.problems().size() == 2);
  CHECK(std::string(e.what()) == "p.yaml:1:1: first\np.yaml:3:7: second");
}
