// The `postgres` source: the rows of a query as records, streamed.
//   source:
//     postgres:
//       dsn: "host=db.internal dbname=shop user=etl password=${PGPASSWORD}"   # or the PG* variables
//       query: "SELECT id, email, updated_at FROM users WHERE active"        # or table: users
// The query runs as COPY (SELECT row_to_json(q) FROM (query) q) TO STDOUT: each
// row arrives as one JSON object (column names as keys, numbers as numbers,
// json/jsonb inline, timestamps as ISO text). Rows are read a batch at a time
// while the stages have room, so the server waits rather than memory growing.
// Records are numbered by row; a resumed run runs the query again and skips the
// rows already handled (the order must be stable: give the query an ORDER BY).
//
// With `incremental: {column: updated_at}` each run reads a window: the rows with
// column > the last window's end, up to the largest value there is when the run
// starts (counted then), ordered by the column. The window's bounds and row count
// are kept in the checkpoint (as the input's name), so an interrupted run finishes
// its window first and the next one starts where it ended (the bookmark of
// Singer's taps). Rows changed while a window is read fall into the next one.
#include <random>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "engine/setup_error.h"
#include "run/checkpoint.h"
#include "sources/sql/query_input.h"
#include "expr/expression.h"
#include "engine/json_scan.h"
#include "engine/json_writer.h"
#include "config/kinds.h"
#include "net/pg/pg_connection.h"
#include "engine/retry.h"
#include "net/sql_table.h"
#include "run/dead_letters.h"
#include "engine/shutdown.h"

namespace aetl {
namespace {

using namespace asio::experimental::awaitable_operators;

struct PgSourceConfig {
  std::string dsn;
  std::string query;
  std::string incremental;  // column: each run reads the rows past the last run's
  std::string table;        // table: (quoted), ordered by its primary key at run time
  size_t batch = 5000;
  std::chrono::milliseconds connect_timeout{10000};
};

/// One line of COPY's text format back to its bytes (\\, \n, \t, octal, ...).
void unescape_copy_text(std::string_view in, std::string& out) {
  out.reserve(out.size() + in.size() + expr::kRecordPadding);
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '\\' || i + 1 == in.size()) {
      out += c;
      continue;
    }
    char e = in[++i];
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case 'x': {
        int v = 0, n = 0;
        while (n < 2 && i + 1 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1]))) {
          char h = in[++i];
          v = v * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          ++n;
        }
        out += static_cast<char>(v);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0', n = 1;
          while (n < 3 && i + 1 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7') v = v * 8 + (in[++i] - '0'), ++n;
          out += static_cast<char>(v);
        } else {
          out += e;  // \\ and any other escaped character
        }
    }
  }
}


/// The input's name in checkpoints: the query, and the incremental column.
std::string input_name(const PgSourceConfig& cfg) {
  std::string name = "postgres: " + cfg.query;
  if (!cfg.incremental.empty()) name += " | incremental " + cfg.incremental + " ";
  return name;
}

class PostgresSource final : public Source {
 public:
  PostgresSource(RunContext& run, PartStats& stats, std::shared_ptr<const PgSourceConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)), input_(run, input_name(*cfg_), !cfg_->incremental.empty()) {}

  asio::awaitable<void> run(BatchChannel& out) override {
    // A connection lost while reading (a server restart) is made again with
    // backoff and the query run again from the row after the last one read.
    const RetryPolicy retry{10, std::chrono::milliseconds(200), std::chrono::milliseconds(5000)};
    std::mt19937_64 rng{std::random_device{}()};
    for (int attempt = 1;; ++attempt) {
      std::shared_ptr<pg::PgConnection> conn;
      std::exception_ptr error;
      bool lost = false;
      try {
        conn = co_await pg::PgConnection::connect(run_.stage.io.get_executor(), cfg_->dsn, cfg_->connect_timeout);
        if (!cfg_->table.empty() && !ordered_) co_await order_table(*conn);
        if (!cfg_->incremental.empty()) co_await open_window(*conn);  // in a snapshot the COPY shares
        if (!input_.name().empty()) {
          std::string sql = copy_sql(*conn);
          co_await conn->copy_out_start(sql);
          reading_ = true;
          co_await read_rows(conn, out);
        }
      } catch (const pg::PgError& e) {
        // An incremental window is read in one snapshot: another one could hold
        // other rows, so the window is read again whole by the next run instead.
        lost = reading_ && e.kind == pg::PgError::Kind::connection && cfg_->incremental.empty();
        // Before any row: the pipeline cannot start (exit 2); later: the run fails.
        if (reading_) error = std::make_exception_ptr(std::runtime_error("source postgres: " + std::string(e.what())));
        else error = std::make_exception_ptr(SetupError("source postgres: " + std::string(e.what())));
        if (lost && attempt <= retry.max_retries && !run_.stage.control.stopping()) {
          spdlog::warn("source postgres: {} (attempt {}, reading again from row {})", e.what(), attempt, read_ + 1);
        } else {
          lost = false;
        }
      }
      conn.reset();
      if (!error) break;
      if (!lost) std::rethrow_exception(error);
      asio::steady_timer wait(run_.stage.io.get_executor(), backoff_delay(retry, attempt, rng));
      co_await (wait.async_wait(asio::use_awaitable) || run_.stage.control.wait_abort());
      if (run_.stage.control.aborted()) break;
    }
    co_await send_batch(out, Batch{});
  }

 private:
  std::string column() const { return "aetl_q." + quote_sql_ident(cfg_->incremental); }

  /// Opens this run's window in a REPEATABLE READ snapshot that the COPY then
  /// reads too, so the rows counted are the rows read: the next window after a
  /// finished one, or the same bounds again after an unfinished one (its rows
  /// come again: at least once; a sink with key: takes them in its stride).
  asio::awaitable<void> open_window(pg::PgConnection& c) {
    co_await c.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    QueryWindow w = input_.next_window();
    const bool again = input_.again();
    std::string where;
    if (w.low) where = " WHERE " + column() + " > " + c.literal(*w.low);
    if (again) where += (where.empty() ? " WHERE " : " AND ") + column() + " <= " + c.literal(w.high);
    std::string sql = "SELECT count(*), max(" + column() + ")::text FROM (" + cfg_->query + ") aetl_q" + where;
    pg::PgResult r = co_await c.exec(sql);
    uint64_t rows = std::strtoull(std::string(r.value(0, 0)).c_str(), nullptr, 10);
    if (rows == 0 || r.is_null(0, 1)) {  // nothing new: the last window's mark stays
      co_await c.exec("COMMIT");
      co_return;
    }
    if (!again) w.high = std::string(r.value(0, 1));
    w.rows = rows;
    input_.open(w);
  }

  /// table: the primary key gives a stable order (resume and reconnect skip rows by number).
  asio::awaitable<void> order_table(pg::PgConnection& c) {
    std::vector<std::optional<std::string>> params{cfg_->table};
    std::string_view sql =
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)";
    pg::PgResult r = co_await c.exec_params(sql, params);
    std::string order;
    for (int i = 0; i < r.rows(); ++i) order += (order.empty() ? "" : ", ") + quote_sql_ident(r.value(i, 0));
    if (order.empty())
      spdlog::warn("source postgres: table {} has no primary key: its rows come in no set order, so a resumed run may "
                   "miss or repeat some", cfg_->table);
    else
      query_ = "SELECT * FROM " + cfg_->table + " ORDER BY " + order;
    ordered_ = true;
  }

  std::string copy_sql(pg::PgConnection& c) const {
    std::string select = "SELECT row_to_json(aetl_q) FROM (" + (query_.empty() ? cfg_->query : query_) + ") aetl_q";
    if (input_.window()) {
      // The window's bounds, in a stable order (ties broken by the whole row).
      select += " WHERE " + column() + " <= " + c.literal(input_.window()->high);
      if (input_.window()->low) select += " AND " + column() + " > " + c.literal(*input_.window()->low);
      select += " ORDER BY " + column() + ", row_to_json(aetl_q)::text";
    }
    return "COPY (" + select + ") TO STDOUT";
  }

  asio::awaitable<void> read_rows(std::shared_ptr<pg::PgConnection> conn, BatchChannel& out) {
    pg::PgConnection* c = conn.get();
    std::weak_ptr<pg::PgConnection> weak = conn;
    run_.stage.control.on_abort([weak] {
      if (auto live = weak.lock()) live->interrupt();
    });
    std::string piece;
    uint64_t row = 0;  // rows of this reading (a reading again after a lost connection starts at 1)
    bool more = true;
    while (more && !run_.stage.control.stopping()) {
      piece.clear();
      size_t rows = 0;
      size_t want = cfg_->batch;
      if (run_.limit) want = std::min<uint64_t>(want, run_.limit - emitted_);
      if (want == 0) break;
      more = co_await c->copy_out_rows(piece, want, rows);
      Batch batch;
      batch.reserve(rows);
      size_t fresh = 0;
      for (size_t at = 0; at < piece.size();) {
        size_t nl = piece.find('\n', at);
        if (nl == std::string::npos) nl = piece.size();
        ++row;
        Record r;
        r.pos = Position{0, row, row};
        bool read_before = row <= read_;  // by this run, before the connection was lost
        if (!read_before) ++fresh;
        if (row > read_) read_ = row;
        if (!read_before && !input_.mark().is_done(row)) {
          unescape_copy_text(std::string_view(piece).substr(at, nl - at), r.data);
          batch.push_back(std::move(r));
        }
        at = nl + 1;
      }
      stats_.in += fresh;
      stats_.out += batch.size();
      emitted_ += batch.size();
      if (!batch.empty()) co_await send_batch(out, std::move(batch));
      if (run_.limit && emitted_ >= run_.limit) co_return;
    }
    if (!more && input_.window()) co_await c->exec("COMMIT");  // the window's snapshot
  }

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const PgSourceConfig> cfg_;
  QueryInput input_;  // the query's rows, or this run's window, and where to resume
  uint64_t emitted_ = 0;
  uint64_t read_ = 0;          // rows read so far by this run
  bool reading_ = false;       // the query started: failures from now on are not about the pipeline
  bool ordered_ = false;
  std::string query_;            // table: the query with its primary key's ORDER BY
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"dsn", FieldType::string, "", "a libpq connection string or URI; empty: the PG* environment variables",
     "\"host=localhost dbname=shop user=etl password=${PGPASSWORD}\""},
    {"query", FieldType::string, "", "the SELECT to read (give query or table)", "\"SELECT id, total FROM orders ORDER BY id\""},
    {"table", FieldType::string, "", "a table (name or schema.name) read whole, in its primary key's order",
     "public.orders"},
    {"batch", FieldType::integer, "5000", "rows per batch", "10000"},
    {"incremental.column", FieldType::string, "required",
     "each run reads only the rows whose column is past the last run's window", "updated_at"},
    {"connect_timeout", FieldType::duration, "10s", "how long connecting may take", "5s"},
};
const std::string_view kExamples[] = {
    "{dsn: \"host=localhost dbname=shop\", query: \"SELECT id FROM orders ORDER BY id\", batch: 1000, "
    "connect_timeout: 5s}",
    "{table: orders, incremental: {column: id}}",
};
}  // namespace
extern const KindFields postgres_source_fields{kFields, kExamples};

SourceBuilder parse_postgres_source(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) return {};
  auto cfg = std::make_shared<PgSourceConfig>();
  size_t before = problems.size();
  if (auto d = r.string("dsn")) cfg->dsn = d->text;
  auto query = r.string("query");
  auto table = r.string("table");
  if (query && table) problems.add(r.where(), "give query or table, not both");
  else if (!query && !table) problems.add(r.where(), "query (or table) is required");
  if (query) cfg->query = query->text;
  if (table) {
    std::string name = table->text, quoted;
    if (auto dot = name.find('.'); dot != std::string::npos)
      quoted = quote_sql_ident(name.substr(0, dot)) + "." + quote_sql_ident(name.substr(dot + 1));
    else
      quoted = quote_sql_ident(name);
    cfg->query = "SELECT * FROM " + quoted;
    cfg->table = quoted;
  }
  if (auto n = r.integer("batch", 1, 1000000)) cfg->batch = static_cast<size_t>(*n);
  if (auto i = r.section("incremental")) {
    if (auto c = i->string("column", true)) {
      if (c->text.empty()) problems.add(c->where, "incremental.column: an empty name");
      cfg->incremental = c->text;
    }
    i->finish();
  }
  if (auto t = r.duration("connect_timeout")) cfg->connect_timeout = *t;
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run) -> std::unique_ptr<Source> {
    return std::make_unique<PostgresSource>(run, run.add_part("postgres"), cfg);
  };
}

}  // namespace aetl
