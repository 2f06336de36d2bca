#pragma once
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "config/config_reader.h"
#include "config/config_tree.h"
#include "config/field_spec.h"
#include "run/pipeline.h"

namespace aetl {

/// Reads the common sink keys into `common` (defaults as given). `r` must have been
/// made with sink_common_fields() among its declarations.
void read_sink_common(ConfigReader& r, SinkCommon& common);
/// The keys every sink has (`batch.size`, ..., `retry.backoff`), declared once.
FieldList sink_common_fields();

/// A sink's own default for one of the common keys (sqlite: batch.size 5000).
struct FieldDefault {
  std::string_view name;
  std::string_view default_text;
};

/// What a kind declares, next to its parse function in the kind's file.
struct KindFields {
  FieldList fields;
  /// Whole values of the kind (YAML, as written after `kind:`) that its parser
  /// accepts; together they use every field. Checked by the kinds' unit test.
  std::span<const std::string_view> examples;
  /// Sinks: their defaults of the common keys, where they differ from the common ones.
  std::span<const FieldDefault> common_defaults = {};
};

/// One row of a registration table. Each kind lives in one file named after its
/// YAML key, with its declared fields; `parse` checks the kind's YAML (reporting
/// every problem) and returns the builder, or an empty function when there were problems.
struct SourceKind {
  std::string_view key;
  std::string_view summary;
  const KindFields& fields;
  SourceBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems);
  bool runs_steps = false;  ///< runs record steps in its own lanes (see run/plan.h)
  bool queue = false;       ///< its position lives in a queue (see Pipeline::SourcePart::queue)
};
struct StageKind {
  std::string_view key;
  std::string_view summary;
  const KindFields& fields;
  StageBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems);
  bool record_step = false;  ///< a record step, fused with its neighbours (see run/plan.h)
};
struct SinkKind {
  std::string_view key;
  std::string_view summary;
  const KindFields& fields;  ///< the sink's own; sink_common_fields() come on top
  SinkBuilder (*parse)(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common);
  bool row_step = false;  ///< offers a row step that makes its rows in the lanes (see run/plan.h)
};

/// The tables (config/kinds.cpp).
const std::vector<SourceKind>& source_kinds();
const std::vector<StageKind>& stage_kinds();
const std::vector<SinkKind>& sink_kinds();

/// The top-level keys of a pipeline file (config/pipeline_spec.cpp).
const KindFields& pipeline_fields();

}  // namespace aetl
