#include "config/pipeline_spec.h"

#include <algorithm>
#include <filesystem>

#include "config/did_you_mean.h"
#include "net/redis/redis_url.h"
#include "run/schedule/schedule.h"

namespace aetl {
namespace {

const FieldSpec kPipelineFields[] = {
    {"name", FieldType::string, "", "names the pipeline's checkpoint (default: the file's base name)", "error-report"},
    {"source", FieldType::section, "required", "one source kind", "{lines: {paths: [in.jsonl]}}"},
    {"stages", FieldType::section, "", "a list of stage kinds, applied in order", "[{filter: 'status >= 400'}]"},
    {"sink", FieldType::section, "", "one sink kind (or `sinks:`)", "{jsonl: {path: out.jsonl}}"},
    {"sinks", FieldType::section, "",
     "several sinks by name, each a sink kind: every record goes to each, or where a `route` stage sends it",
     "{db: {sqlite: {path: out.db, table: t}}, archive: {jsonl: {path: all.jsonl}}}"},
    {"dead_letter", FieldType::section, "", "a sink kind receiving the records that failed",
     "{jsonl: {path: failed.jsonl}}"},
    {"schedule.cron", FieldType::string, "",
     "fire at the times of this crontab(5) expression (5 fields or @hourly, @daily, ...)", "'*/15 * * * *'"},
    {"schedule.every", FieldType::duration, "",
     "fire at the multiples of this since the Unix epoch, UTC (whole seconds; 15m fires at :00, :15, ...)", "15m"},
    {"schedule.timezone", FieldType::string, "the system's",
     "the IANA time zone the cron fields are read in (cron only)", "Europe/Berlin"},
    {"schedule.misfire", FieldType::choice, "run_once",
     "fires missed while nothing ran (downtime, a long run): run_once (if the last is within grace) or skip",
     "skip"},
    {"schedule.grace", FieldType::duration, "one interval", "how late a missed fire may still run", "10m"},
    {"schedule.jitter", FieldType::duration, "0s", "each fire starts up to this much after its slot, at random",
     "30s"},
    {"schedule.redis", FieldType::string, "",
     "claim slots and hold the run lock in this Redis (schedulers on many hosts); default: the state store",
     "\"redis://10.0.0.5:6379/0\""},
    {"schedule.lock_ttl", FieldType::duration, "30s",
     "the Redis run lock's expiry, renewed every third of it while a fire runs", "10s"},
    {"settings.channel_capacity", FieldType::integer, "2", "batches between two parts", "4"},
    {"settings.checkpoint_interval", FieldType::duration, "1s",
     "how often checkpoints are saved while running (always at the end)", "5s"},
};
const std::string_view kPipelineExamples[] = {
    "{name: report, source: {lines: {paths: [in.jsonl]}}, stages: [{filter: 'a > 1'}], sink: {jsonl: out.jsonl}, "
    "dead_letter: {jsonl: failed.jsonl}, settings: {channel_capacity: 4, checkpoint_interval: 5s}}",
    "{source: {lines: {paths: [in.jsonl]}}, sink: {jsonl: out.jsonl}, schedule: {cron: '*/15 * * * *', "
    "timezone: Europe/Berlin, misfire: skip, grace: 10m, jitter: 30s, redis: 'redis://127.0.0.1:6379/0', "
    "lock_ttl: 10s}}",
    "{source: {lines: {paths: [in.jsonl]}}, sink: {jsonl: out.jsonl}, schedule: {every: 15m}}",
    "{source: {lines: {paths: [in.jsonl]}}, sinks: {db: {sqlite: {path: out.db, table: t}}, archive: {jsonl: {path: all.jsonl}}}}",
};

const FieldSpec kSinkCommonFields[] = {
    {"batch.size", FieldType::integer, "1000", "records per write at most", "5000"},
    {"batch.bytes", FieldType::size, "4MiB", "bytes of record data per write at most", "8MiB"},
    {"batch.linger", FieldType::duration, "500ms", "how long a partial batch may wait", "200ms"},
    {"retry.max", FieldType::integer, "3",
     "retries of a write after a transient error (a locked database, a full disk); `retry: N` is short for it", "5"},
    {"retry.backoff", FieldType::duration_range, "100ms..5s", "waits between attempts, full jitter, capped",
     "200ms..10s"},
};

/// A part is a mapping with exactly one key, the kind: `{sqlite: {...}}`. Problems
/// are reported in the caller's context ("stage 2").
template <class Kind>
const Kind* pick_kind(const ConfigValue& node, const std::vector<Kind>& table, ConfigProblems& problems,
                      const ConfigValue** body) {
  std::vector<std::string> keys;
  for (const auto& k : table) keys.emplace_back(k.key);
  std::string list;
  for (const auto& k : keys) list += (list.empty() ? "" : ", ") + k;
  if (!node.is_mapping() || node.entries.size() != 1) {
    problems.add(node.where, "must name exactly one kind (" + list + "), as in `" + keys.front() + ": {...}`");
    return nullptr;
  }
  const auto& [key, value] = node.entries.front();
  for (const auto& k : table) {
    if (k.key == key.scalar) {
      *body = &value;
      return &k;
    }
  }
  std::string msg = "unknown kind '" + key.scalar + "'";
  if (auto guess = did_you_mean(key.scalar, keys)) msg += " (did you mean '" + *guess + "'?)";
  else msg += " (known: " + list + ")";
  problems.add(key.where, msg);
  return nullptr;
}

std::optional<PipelineSpec::SinkPart> parse_sink(const ConfigValue& node, const std::string& what,
                                                 ConfigProblems& problems) {
  ProblemContext context(problems, what);
  const ConfigValue* body = nullptr;
  const SinkKind* kind = pick_kind(node, sink_kinds(), problems, &body);
  if (!kind) return std::nullopt;
  context.rename(what + " " + std::string(kind->key));
  PipelineSpec::SinkPart part;
  part.kind = std::string(kind->key);
  part.build = kind->parse(*body, problems, part.common);
  part.row_step = kind->row_step;
  // One checkpoint per pipeline, kept by the main sink: a dead letter storing its
  // own would overwrite it (and lose the compare-and-set against other runs).
  if (what == "dead_letter")
    if (const ConfigValue* eo = body->find("exactly_once"); eo && part.common.exactly_once)
      problems.add(eo->where, "exactly_once: is for the main sink only (the checkpoint it keeps covers the dead "
                              "letter too)");
  return part;
}

}  // namespace

void read_schedule(ConfigReader& r, ScheduleSpec& out) {
  auto cron = r.string("cron");
  auto every = r.duration("every");
  auto tz = r.string("timezone");
  ConfigProblems& problems = r.problems();
  if (cron && every) problems.add(r.where(), "give one of cron and every, not both");
  else if (!cron && !every) problems.add(r.where(), "needs cron or every");
  if (every) {
    if (every->count() < 1000 || every->count() % 1000 != 0)
      problems.add(r.raw("every")->where, "every: must be whole seconds, at least 1s");
    else out.every = std::chrono::duration_cast<std::chrono::seconds>(*every);
  }
  if (cron) out.cron = cron->text;
  if (tz) {
    if (!cron) problems.add(tz->where, "timezone: applies to cron only (every counts from the Unix epoch, UTC)");
    out.timezone = tz->text;
  }
  if (auto m = r.choice("misfire", {"run_once", "skip"})) out.misfire_skip = *m == "skip";
  if (auto g = r.duration("grace")) out.grace = *g;
  if (auto j = r.duration("jitter")) out.jitter = *j;
  if (auto u = r.string("redis")) {
    try {
      redis::parse_redis_url(u->text);
      out.redis_url = u->text;
    } catch (const std::invalid_argument& e) {
      problems.add(u->where, std::string("redis: ") + e.what());
    }
  }
  if (auto t = r.duration("lock_ttl")) {
    if (t->count() < 1000) problems.add(r.raw("lock_ttl")->where, "lock_ttl: must be at least 1s");
    else out.lock_ttl = *t;
  }
  if (out.given() && (cron || every)) {
    try {
      Schedule check(out);
    } catch (const std::exception& e) {
      const ConfigValue* at = cron ? r.raw("cron") : r.raw("every");
      if (tz && std::string_view(e.what()).rfind("timezone", 0) == 0) at = r.raw("timezone");
      problems.add(at->where, e.what());
    }
  }
  r.finish();
}

const KindFields& pipeline_fields() {
  static const KindFields fields{kPipelineFields, kPipelineExamples};
  return fields;
}

FieldList sink_common_fields() { return kSinkCommonFields; }

PipelineSpec load_pipeline(const std::string& path, const EnvLookup& env) {
  ConfigValue root = load_config_file(path);
  ConfigProblems problems(env);
  PipelineSpec spec;
  spec.file = path;
  ProblemContext pipeline_context(problems, "the pipeline");
  ConfigReader top(root, problems, {kPipelineFields});
  if (!top.ok()) problems.throw_if_any();
  if (auto name = top.string("name")) spec.name = name->text;
  else spec.name = std::filesystem::path(path).stem().string();
  const ConfigValue* src = top.raw("source", true);
  const ConfigValue* stages = top.raw("stages");
  const ConfigValue* sink = top.raw("sink");
  const ConfigValue* sinks = top.raw("sinks");
  const ConfigValue* dl = top.raw("dead_letter");

  if (src) {
    ProblemContext context(problems, "source");
    const ConfigValue* body = nullptr;
    if (const SourceKind* kind = pick_kind(*src, source_kinds(), problems, &body)) {
      context.rename("source " + std::string(kind->key));
      spec.source.kind = std::string(kind->key);
      spec.source.build = kind->parse(*body, problems);
      spec.source.runs_steps = kind->runs_steps;
      spec.source.queue = kind->queue;
    }
  }

  if (stages) {
    if (!stages->is_sequence()) {
      problems.add(stages->where, "stages: must be a list (each item `- kind: ...`), not " + stages->describe());
    } else {
      std::map<std::string, int> seen;
      int position = 0;
      for (const auto& item : stages->items) {
        ProblemContext context(problems, "stage " + std::to_string(++position));
        const ConfigValue* body = nullptr;
        const StageKind* kind = pick_kind(item, stage_kinds(), problems, &body);
        if (!kind) continue;
        context.rename("stage " + std::to_string(position) + " (" + std::string(kind->key) + ")");
        PipelineSpec::StagePart part;
        part.kind = std::string(kind->key);
        part.label = part.kind + "#" + std::to_string(++seen[part.kind]);
        part.build = kind->parse(*body, problems);
        part.record_step = kind->record_step;
        spec.stages.push_back(std::move(part));
      }
    }
  }

  if (sink && sinks) problems.add(sinks->where, "give sink or sinks, not both");
  else if (!sink && !sinks) problems.add(root.where, "missing required key 'sink' (or 'sinks')");
  if (sink && !sinks) {
    if (auto part = parse_sink(*sink, "sink", problems)) spec.sinks.push_back(std::move(*part));
  }
  if (sinks && !sink) {
    if (!sinks->is_mapping() || sinks->entries.empty()) {
      problems.add(sinks->where, "sinks: must be a mapping of names to sinks, as in `sinks: {db: {sqlite: {...}}}`, not " +
                                     sinks->describe());
    } else if (sinks->entries.size() > 32) {
      problems.add(sinks->where, "sinks: at most 32");
    } else {
      for (const auto& [key, value] : sinks->entries) {
        const std::string& name = key.scalar;
        bool good = !name.empty() && name != "dead_letter" &&
                    std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
        if (!good) {
          problems.add(key.where, "sinks: '" + name + "' cannot name a sink (letters, digits, _ and -; not dead_letter)");
          continue;
        }
        if (auto part = parse_sink(value, "sink " + name, problems)) {
          part->name = name;
          spec.sinks.push_back(std::move(*part));
        }
      }
    }
  }
  if (dl) {
    if (auto part = parse_sink(*dl, "dead_letter", problems)) {
      part->name = "dead_letter";
      spec.dead_letter = std::move(*part);
    }
  }
  if (auto sched = top.section("schedule")) {
    ProblemContext context(problems, "schedule");
    read_schedule(*sched, spec.schedule);
  }
  if (auto settings = top.section("settings")) {
    if (auto n = settings->integer("channel_capacity", 1, 1024)) spec.channel_capacity = static_cast<size_t>(*n);
    if (auto d = settings->duration("checkpoint_interval")) spec.checkpoint_interval = *d;
    settings->finish();
  }
  // What parts name: a route's sinks, the dead letter.
  for (const auto& ref : problems.references()) {
    if (ref.what == "sink") {
      bool known = std::any_of(spec.sinks.begin(), spec.sinks.end(), [&](const auto& s) { return s.name == ref.name; });
      if (known || spec.sinks.empty()) continue;
      std::vector<std::string> names;
      for (const auto& s : spec.sinks) names.push_back(s.name);
      std::string msg = "no sink named '" + ref.name + "'";
      if (auto guess = did_you_mean(ref.name, names)) msg += " (did you mean '" + *guess + "'?)";
      else {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        msg += " (the sinks: " + list + ")";
      }
      problems.add_as(ref.context, ref.where, msg);
    } else if (ref.what == "dead_letter" && !spec.dead_letter) {
      problems.add_as(ref.context, ref.where, "unmatched: dead_letter needs a dead_letter sink in the pipeline");
    }
  }
  for (size_t i = 0; stages && spec.stages.size() == stages->items.size() && i < spec.stages.size(); ++i)
    if (spec.stages[i].kind == "route" && i + 1 != spec.stages.size())
      problems.add_as("stage " + std::to_string(i + 1) + " (route)", stages->items[i].where,
                      "must be the last stage (its records go to the sinks)");
  top.finish();
  problems.throw_if_any();
  return spec;
}

void read_sink_common(ConfigReader& r, SinkCommon& common) {
  if (auto batch = r.section("batch")) {
    if (auto n = batch->integer("size", 1, 1'000'000)) common.batching.size = static_cast<size_t>(*n);
    if (auto n = batch->size("bytes")) common.batching.bytes = static_cast<size_t>(std::max<int64_t>(*n, 1));
    if (auto d = batch->duration("linger")) common.batching.linger = *d;
    batch->finish();
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
