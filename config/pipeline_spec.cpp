#include "config/pipeline_spec.h"

#include <filesystem>

#include "config/did_you_mean.h"

namespace aetl {
namespace {

/// A part is a mapping with exactly one key, the kind: `{sqlite: {...}}`.
template <class Kind>
const Kind* pick_kind(const ConfigValue& node, const std::vector<Kind>& table, const std::string& what,
                      ConfigProblems& problems, const ConfigValue** body) {
  std::vector<std::string> keys;
  for (const auto& k : table) keys.emplace_back(k.key);
  std::string list;
  for (const auto& k : keys) list += (list.empty() ? "" : ", ") + k;
  if (!node.is_mapping() || node.entries.size() != 1) {
    problems.add(node.where, what + " must name exactly one kind (" + list + "), as in `" + keys.front() + ": {...}`");
    return nullptr;
  }
  const auto& [key, value] = node.entries.front();
  for (const auto& k : table) {
    if (k.key == key.scalar) {
      *body = &value;
      return &k;
    }
  }
  std::string msg = "unknown " + what + " kind '" + key.scalar + "'";
  if (auto guess = did_you_mean(key.scalar, keys)) msg += " (did you mean '" + *guess + "'?)";
  else msg += " (known: " + list + ")";
  problems.add(key.where, msg);
  return nullptr;
}

std::optional<PipelineSpec::SinkPart> parse_sink(const ConfigValue& node, const std::string& what,
                                                 ConfigProblems& problems) {
  const ConfigValue* body = nullptr;
  const SinkKind* kind = pick_kind(node, sink_kinds(), what, problems, &body);
  if (!kind) return std::nullopt;
  PipelineSpec::SinkPart part;
  part.kind = std::string(kind->key);
  part.build = kind->parse(*body, problems, part.common);
  part.row_step = kind->row_step;
  return part;
}

}  // namespace

PipelineSpec load_pipeline(const std::string& path, const EnvLookup& env) {
  ConfigValue root = load_config_file(path);
  ConfigProblems problems(env);
  PipelineSpec spec;
  spec.file = path;
  ConfigReader top(root, problems, "the pipeline");
  if (!top.ok()) problems.throw_if_any();

  if (auto name = top.string("name")) spec.name = name->text;
  else spec.name = std::filesystem::path(path).stem().string();

  if (const ConfigValue* src = top.raw("source", true)) {
    const ConfigValue* body = nullptr;
    if (const SourceKind* kind = pick_kind(*src, source_kinds(), "source", problems, &body)) {
      spec.source.kind = std::string(kind->key);
      spec.source.build = kind->parse(*body, problems);
      spec.source.runs_steps = kind->runs_steps;
    }
  }

  if (const ConfigValue* stages = top.raw("stages")) {
    if (!stages->is_sequence()) {
      problems.add(stages->where, "stages must be a list (each item `- kind: ...`), not " + stages->describe());
    } else {
      std::map<std::string, int> seen;
      for (const auto& item : stages->items) {
        const ConfigValue* body = nullptr;
        const StageKind* kind = pick_kind(item, stage_kinds(), "stage", problems, &body);
        if (!kind) continue;
        PipelineSpec::StagePart part;
        part.kind = std::string(kind->key);
        part.label = part.kind + "#" + std::to_string(++seen[part.kind]);
        part.build = kind->parse(*body, problems);
        part.record_step = kind->record_step;
        spec.stages.push_back(std::move(part));
      }
    }
  }

  if (const ConfigValue* sink = top.raw("sink", true)) {
    if (auto part = parse_sink(*sink, "sink", problems)) spec.sink = std::move(*part);
  }
  if (const ConfigValue* dl = top.raw("dead_letter")) {
    if (auto part = parse_sink(*dl, "dead_letter", problems)) spec.dead_letter = std::move(*part);
    // One checkpoint per pipeline, kept by the main sink: a dead letter storing its
    // own would overwrite it (and lose the compare-and-set against other runs).
    if (dl->is_mapping() && dl->entries.size() == 1)
      if (const ConfigValue* eo = dl->entries.front().second.find("exactly_once"); eo && eo->scalar == "true")
        problems.add(eo->where, "dead_letter: exactly_once is for the main sink only (the checkpoint it keeps "
                                "covers the dead letter too)");
  }
  if (const ConfigValue* settings = top.raw("settings")) {
    ConfigReader r(*settings, problems, "settings");
    if (auto n = r.integer("channel_capacity", 1, 1024)) spec.channel_capacity = static_cast<size_t>(*n);
    if (auto d = r.duration("checkpoint_interval")) spec.checkpoint_interval = *d;
    r.finish();
  }
  top.finish();
  problems.throw_if_any();
  return spec;
}

void read_sink_common(ConfigReader& r, SinkCommon& common) {
  if (const ConfigValue* batch = r.raw("batch")) {
    ConfigReader b(*batch, r.problems(), "batch");
    if (auto n = b.integer("size", 1, 1'000'000)) common.batching.size = static_cast<size_t>(*n);
    if (auto n = b.size("bytes")) common.batching.bytes = static_cast<size_t>(std::max<int64_t>(*n, 1));
    if (auto d = b.duration("linger")) common.batching.linger = *d;
    b.finish();
  }
  if (auto retry = r.retry("retry", common.retry)) common.retry = *retry;
}

Pipeline::SinkPart plain_jsonl_sink(const std::string& path) {
  ConfigValue node;
  node.type = ConfigValue::Type::mapping;
  auto scalar = [](std::string text) {
    ConfigValue v;
    v.type = ConfigValue::Type::scalar;
    v.scalar = std::move(text);
    return v;
  };
  node.entries.emplace_back(scalar("path"), scalar(path));
  node.entries.emplace_back(scalar("fsync"), scalar("false"));
  ConfigProblems problems(process_environment());
  for (const auto& kind : sink_kinds())
    if (kind.key == "jsonl") {
      Pipeline::SinkPart part;
      part.kind = "jsonl";
      part.build = kind.parse(node, problems, part.common);
      part.row_step = kind.row_step;
      problems.throw_if_any();
      return part;
    }
  throw std::logic_error("no jsonl sink kind");
}

}  // namespace aetl
