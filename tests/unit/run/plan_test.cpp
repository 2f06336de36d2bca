#include <catch2/catch.hpp>

#include "run/plan.h"

using namespace aetl;

namespace {

Pipeline pipeline(bool source_runs_steps, std::vector<bool> steps, bool row_step) {
  Pipeline p;
  p.source.kind = "src";
  p.source.runs_steps = source_runs_steps;
  for (size_t i = 0; i < steps.size(); ++i)
    p.stages.push_back({"k", "s" + std::to_string(i), nullptr, static_cast<bool>(steps[i])});
  p.sinks.emplace_back();
  p.sinks[0].kind = "out";
  p.sinks[0].row_step = row_step;
  return p;
}

}  // namespace

TEST_CASE("plan: leading steps run in the source's lanes, neighbouring steps form one chain", "[plan]") {
  Plan plan = make_plan(pipeline(true, {true, true, false, true, true, false, true}, true));
  CHECK(plan.in_source == std::vector<size_t>{0, 1});
  REQUIRE(plan.units.size() == 4);
  CHECK((plan.units[0].first == 2 && plan.units[0].last == 2 && !plan.units[0].chain));
  CHECK((plan.units[1].first == 3 && plan.units[1].last == 4 && plan.units[1].chain));
  CHECK((plan.units[2].first == 5 && !plan.units[2].chain));
  CHECK((plan.units[3].first == 6 && plan.units[3].last == 6 && plan.units[3].chain));
  CHECK(plan.row_step == Plan::RowStep::in_last_chain);
}

TEST_CASE("plan: a source that runs no steps leaves them to a chain stage", "[plan]") {
  Plan plan = make_plan(pipeline(false, {true, true}, true));
  CHECK(plan.in_source.empty());
  REQUIRE(plan.units.size() == 1);
  CHECK((plan.units[0].first == 0 && plan.units[0].last == 1 && plan.units[0].chain));
  CHECK(plan.row_step == Plan::RowStep::in_last_chain);
}

TEST_CASE("plan: where the sink's rows are made", "[plan]") {
  CHECK(make_plan(pipeline(true, {}, true)).row_step == Plan::RowStep::in_source);
  CHECK(make_plan(pipeline(true, {true}, true)).row_step == Plan::RowStep::in_source);
  CHECK(make_plan(pipeline(false, {}, true)).row_step == Plan::RowStep::at_sink);
  CHECK(make_plan(pipeline(true, {false}, true)).row_step == Plan::RowStep::at_sink);
  CHECK(make_plan(pipeline(true, {true, false}, true)).row_step == Plan::RowStep::at_sink);
  CHECK(make_plan(pipeline(true, {false, true}, false)).row_step == Plan::RowStep::at_sink);
}
