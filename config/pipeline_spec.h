#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/env_expand.h"
#include "config/kinds.h"

namespace aetl {

/// A pipeline file, checked and ready to build.
struct PipelineSpec {
  std::string file;
  std::string name;  ///< `name:`, or the file's base name; keys the checkpoint
  struct SourcePart {
    std::string kind;
    SourceBuilder build;
  };
  struct StagePart {
    std::string kind;
    std::string label;  ///< "filter#1": the kind and its position, for messages
    StageBuilder build;
  };
  struct SinkPart {
    std::string kind;
    SinkBuilder build;
    SinkCommon common;
  };
  SourcePart source;
  std::vector<StagePart> stages;
  SinkPart sink;
  std::optional<SinkPart> dead_letter;
  size_t channel_capacity = 2;  ///< batches between two parts (each ~256 KiB of input)
  std::chrono::milliseconds checkpoint_interval{1000};
};

/// Reads and checks a pipeline file. Throws ConfigError listing every problem
/// (file:line:col each), or nothing if the file is good.
PipelineSpec load_pipeline(const std::string& path, const EnvLookup& env);

}  // namespace aetl
