#pragma once
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "config/config_reader.h"
#include "config/config_tree.h"
#include "engine/engine.h"
#include "run/pipeline_sink.h"
#include "run/run_context.h"

namespace aetl {

/// What parsing a kind's YAML yields: a function that builds the part at run time.
using SourceBuilder = std::function<std::unique_ptr<Source>(RunContext&)>;
using StageBuilder = std::function<std::unique_ptr<Stage>(RunContext&, PartStats&)>;
using SinkBuilder = std::function<std::unique_ptr<PipelineSink>(RunContext&)>;

/// Settings every sink has: `batch: {size, bytes, linger}` and `retry: {max, backoff}`.
struct SinkCommon {
  SinkBatching batching;
  RetryPolicy retry{3, std::chrono::milliseconds(100), std::chrono::milliseconds(5000)};
};
/// Reads the common sink keys into `common` (defaults as given).
void read_sink_common(ConfigReader& r, SinkCommon& common);

/// One row of a registration table. Each kind lives in one file named after its
/// YAML key; `parse` checks the kind's YAML (reporting every problem) and returns
/// the builder, or an empty function when there were problems.
struct SourceKind {
  std::string_view key;
  std::string_view summary;
  SourceBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems);
};
struct StageKind {
  std::string_view key;
  std::string_view summary;
  StageBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems);
};
struct SinkKind {
  std::string_view key;
  std::string_view summary;
  SinkBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common);
};

/// The tables (config/kinds.cpp).
const std::vector<SourceKind>& source_kinds();
const std::vector<StageKind>& stage_kinds();
const std::vector<SinkKind>& sink_kinds();

}  // namespace aetl
