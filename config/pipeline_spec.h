#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/env_expand.h"
#include "config/kinds.h"

namespace aetl {

/// A pipeline file, checked and ready to build.
using PipelineSpec = Pipeline;

/// Reads and checks a pipeline file. Throws ConfigError listing every problem
/// (file:line:col each), or nothing if the file is good.
PipelineSpec load_pipeline(const std::string& path, const EnvLookup& env);

/// Reads a `schedule:` block (declared among pipeline_fields()) into `out`,
/// reporting every problem (a cron field out of range, an unknown time zone).
void read_schedule(class ConfigReader& r, ScheduleSpec& out);

/// A jsonl sink to `path` ("-": stdout) without fsync: where --dry-run sends records.
Pipeline::SinkPart plain_jsonl_sink(const std::string& path);

}  // namespace aetl
