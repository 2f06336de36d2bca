#pragma once
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "config/config_reader.h"
#include "config/config_tree.h"
#include "run/pipeline.h"

namespace aetl {

/// Reads the common sink keys into `common` (defaults as given).
void read_sink_common(ConfigReader& r, SinkCommon& common);

/// One row of a registration table. Each kind lives in one file named after its
/// YAML key; `parse` checks the kind's YAML (reporting every problem) and returns
/// the builder, or an empty function when there were problems.
struct SourceKind {
  std::string_view key;
  std::string_view summary;
  SourceBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems);
  bool runs_steps = false;  ///< runs record steps in its own lanes (see run/plan.h)
};
struct StageKind {
  std::string_view key;
  std::string_view summary;
  StageBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems);
  bool record_step = false;  ///< a record step, fused with its neighbours (see run/plan.h)
};
struct SinkKind {
  std::string_view key;
  std::string_view summary;
  SinkBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common);
  bool row_step = false;  ///< offers a row step that makes its rows in the lanes (see run/plan.h)
};

/// The tables (config/kinds.cpp).
const std::vector<SourceKind>& source_kinds();
const std::vector<StageKind>& stage_kinds();
const std::vector<SinkKind>& sink_kinds();

}  // namespace aetl
