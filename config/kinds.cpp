// The registration tables: every source, stage and sink kind, by YAML key.
// Adding a kind: its file (named after the key, declaring its fields next to its
// parse function), one line here, its tests and its entry in man/aetl-pipeline.5.
#include "config/kinds.h"

namespace aetl {

// sources/
SourceBuilder parse_lines_source(const ConfigValue&, ConfigProblems&);
extern const KindFields lines_source_fields;
SourceBuilder parse_postgres_source(const ConfigValue&, ConfigProblems&);
extern const KindFields postgres_source_fields;
SourceBuilder parse_mysql_source(const ConfigValue&, ConfigProblems&);
extern const KindFields mysql_source_fields;
SourceBuilder parse_http_source(const ConfigValue&, ConfigProblems&);
extern const KindFields http_source_fields;
SourceBuilder parse_redis_source(const ConfigValue&, ConfigProblems&);
extern const KindFields redis_source_fields;
SourceBuilder parse_websocket_source(const ConfigValue&, ConfigProblems&);
extern const KindFields websocket_source_fields;
// stages/
StageBuilder parse_filter_stage(const ConfigValue&, ConfigProblems&);
StageBuilder parse_route_stage(const ConfigValue&, ConfigProblems&);
StageBuilder parse_gather_stage(const ConfigValue&, ConfigProblems&);
extern const KindFields gather_stage_fields;
extern const KindFields route_stage_fields;
extern const KindFields filter_stage_fields;
StageBuilder parse_select_stage(const ConfigValue&, ConfigProblems&);
extern const KindFields select_stage_fields;
StageBuilder parse_set_stage(const ConfigValue&, ConfigProblems&);
extern const KindFields set_stage_fields;
StageBuilder parse_jq_stage(const ConfigValue&, ConfigProblems&);
extern const KindFields jq_stage_fields;
StageBuilder parse_fetch_stage(const ConfigValue&, ConfigProblems&);
extern const KindFields fetch_stage_fields;
// sinks/
SinkBuilder parse_jsonl_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
extern const KindFields jsonl_sink_fields;
SinkBuilder parse_csv_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
extern const KindFields csv_sink_fields;
SinkBuilder parse_sqlite_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
extern const KindFields sqlite_sink_fields;
SinkBuilder parse_postgres_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
extern const KindFields postgres_sink_fields;
SinkBuilder parse_mysql_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
extern const KindFields mysql_sink_fields;
SinkBuilder parse_redis_sink(const ConfigValue&, ConfigProblems&, SinkCommon&);
extern const KindFields redis_sink_fields;

const std::vector<SourceKind>& source_kinds() {
  static const std::vector<SourceKind> table = {
      {"lines", "lines of files, globs, stdin or an HTTP body; json, text or csv", lines_source_fields,
       parse_lines_source, true},
      {"postgres", "the rows of a PostgreSQL query, streamed", postgres_source_fields, parse_postgres_source},
      {"mysql", "the rows of a MariaDB/MySQL query, streamed", mysql_source_fields, parse_mysql_source},
      {"http", "the records of a paginated JSON API, page after page", http_source_fields, parse_http_source},
      {"redis", "a worker of a Redis Streams consumer group: XREADGROUP, XACK once handled", redis_source_fields,
       parse_redis_source, false, true},
      {"websocket", "the messages of a ws:// or wss:// feed, with reconnects; at-most-once for what a crash cuts off",
       websocket_source_fields, parse_websocket_source},
  };
  return table;
}

const std::vector<StageKind>& stage_kinds() {
  static const std::vector<StageKind> table = {
      {"filter", "keep the records an expression is true for", filter_stage_fields, parse_filter_stage, true},
      {"select", "build each record anew from named expressions", select_stage_fields, parse_select_stage, true},
      {"set", "add or replace fields with expressions", set_stage_fields, parse_set_stage, true},
      {"jq", "a jq program per record, on the thread pool", jq_stage_fields, parse_jq_stage},
      {"fetch", "one HTTP request per record, the response in a field", fetch_stage_fields, parse_fetch_stage},
      {"gather", "several HTTP calls per record at the same time, each response in a field", gather_stage_fields,
       parse_gather_stage},
      {"route", "send each record to the sinks of the case it matches (the last stage)", route_stage_fields,
       parse_route_stage, true},
  };
  return table;
}

const std::vector<SinkKind>& sink_kinds() {
  static const std::vector<SinkKind> table = {
      {"jsonl", "JSON Lines to a file or stdout", jsonl_sink_fields, parse_jsonl_sink},
      {"csv", "CSV with a header row to a file or stdout", csv_sink_fields, parse_csv_sink},
      {"sqlite", "batched transactions into an SQLite table", sqlite_sink_fields, parse_sqlite_sink, true},
      {"postgres", "batched COPY into a PostgreSQL table, on the event loop", postgres_sink_fields,
       parse_postgres_sink, true},
      {"mysql", "batched multi-row INSERTs into a MariaDB/MySQL table, on the event loop", mysql_sink_fields,
       parse_mysql_sink, true},
      {"redis", "XADD into a Redis stream, a pipelined batch at a time, on the event loop", redis_sink_fields,
       parse_redis_sink},
  };
  return table;
}

}  // namespace aetl
