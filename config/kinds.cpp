// The registration tables: every source, stage and sink kind, by YAML key.
// Adding a kind: its file (named after the key), one line here, its tests and
// its entry in man/aetl-pipeline.5.
#include "config/kinds.h"

namespace aetl {

// sources/
SourceBuilder parse_lines_source(const ConfigValue&, ConfigProblems&);
SourceBuilder parse_postgres_source(const ConfigValue&, ConfigProblems&);
// stages/
StageBuilder parse_filter_stage(const ConfigValue&, ConfigProblems&);
StageBuilder parse_select_stage(const ConfigValue&, ConfigProblems&);
StageBuilder parse_set_stage(const ConfigValue&, ConfigProblems&);
StageBuilder parse_jq_stage(const ConfigValue&, ConfigProblems&);
StageBuilder parse_fetch_stage(const ConfigValue&, ConfigProblems&);
// sinks/
SinkBuilder parse_jsonl_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
SinkBuilder parse_csv_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
SinkBuilder parse_sqlite_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
SinkBuilder parse_postgres_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);

const std::vector<SourceKind>& source_kinds() {
  static const std::vector<SourceKind> table = {
      {"lines", "lines of files, globs, stdin or an HTTP body; json, text or csv", parse_lines_source, true},
      {"postgres", "the rows of a PostgreSQL query, streamed", parse_postgres_source},
  };
  return table;
}

const std::vector<StageKind>& stage_kinds() {
  static const std::vector<StageKind> table = {
      {"filter", "keep the records an expression is true for", parse_filter_stage, true},
      {"select", "build each record anew from named expressions", parse_select_stage, true},
      {"set", "add or replace fields with expressions", parse_set_stage, true},
      {"jq", "a jq program per record, on the thread pool", parse_jq_stage},
      {"fetch", "one HTTP request per record, the response in a field", parse_fetch_stage},
  };
  return table;
}

const std::vector<SinkKind>& sink_kinds() {
  static const std::vector<SinkKind> table = {
      {"jsonl", "JSON Lines to a file or stdout", parse_jsonl_sink},
      {"csv", "CSV with a header row to a file or stdout", parse_csv_sink},
      {"sqlite", "batched transactions into an SQLite table", parse_sqlite_sink},
      {"postgres", "batched COPY into a PostgreSQL table, on the event loop", parse_postgres_sink, true},
  };
  return table;
}

}  // namespace aetl
