// The `mysql` source: the rows of a MariaDB or MySQL query as records, streamed.
//   source:
//     mysql:
//       url: "mysql://etl:${MYSQL_PWD}@db.internal/shop"
//       query: "SELECT id, email, updated_at FROM users WHERE active ORDER BY id"   # or table: users
// The query's rows are read as the server sends them (mysql_use_result: the
// client never holds the result), a batch at a time while the stages have room,
// so the server waits rather than memory growing (the session's
// net_write_timeout is raised so a slow sink does not make the server give up).
// Each row is one JSON object: column names as keys, numeric columns as
// numbers, JSON columns inline, NULL as null, binary strings with the bytes
// that are not UTF-8 as \udcXX, the rest (dates, times, enums) as text. Records
// are numbered by row; a resumed run runs the query again and skips the rows
// already handled (give the query an ORDER BY: the order must be stable).
//
// With `incremental: {column: updated_at}` each run reads a window, as the
// postgres source does: the rows with column > the last window's end, up to the
// largest value there is when the run starts, counted and read in one
// consistent snapshot, ordered by the column (ties by every column). The
// window's bounds and row count are kept in the checkpoint, so an interrupted
// run reads its window again and the next one starts where it ended.
#include <random>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "config/kinds.h"
#include "engine/json_scan.h"
#include "engine/json_writer.h"
#include "engine/retry.h"
#include "engine/setup_error.h"
#include "engine/shutdown.h"
#include "expr/expression.h"
#include "net/mysql/mysql_connection.h"
#include "run/checkpoint.h"
#include "sources/sql/query_input.h"

namespace aetl {
namespace {

using namespace asio::experimental::awaitable_operators;
using mysql::MysqlConnection;
using mysql::MysqlError;
using mysql::MysqlField;

struct MysqlSourceConfig {
  mysql::MysqlUrl where;
  std::string query;
  std::string table;        // table: (quoted), ordered by its primary key at run time
  std::string table_database, table_name;  // table: its parts, unquoted
  std::string incremental;  // column: each run reads the rows past the last run's
  size_t batch = 5000;
  std::chrono::milliseconds connect_timeout{10000};
};


/// One row as a JSON object.
void row_json(const std::vector<MysqlField>& fields, const char* const* values, const unsigned long* lengths,
              std::string& out) {
  out.reserve(out.size() + 64 + expr::kRecordPadding);
  out += '{';
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, fields[i].name);
    out += ':';
    if (!values[i]) {
      out += "null";
      continue;
    }
    std::string_view v(values[i], lengths[i]);
    switch (fields[i].as) {
      case MysqlField::As::number:
      case MysqlField::As::json:
        out += v;
        break;
      default:
        append_json_string(out, v);
    }
  }
  out += '}';
}

/// The input's name in checkpoints: the query, and the incremental column.
std::string input_name(const MysqlSourceConfig& cfg) {
  std::string name = "mysql: " + cfg.query;
  if (!cfg.incremental.empty()) name += " | incremental " + cfg.incremental + " ";
  return name;
}

class MysqlSource final : public Source {
 public:
  MysqlSource(RunContext& run, PartStats& stats, std::shared_ptr<const MysqlSourceConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)), input_(run, input_name(*cfg_), !cfg_->incremental.empty()) {}

  asio::awaitable<void> run(BatchChannel& out) override {
    // A connection lost while reading (a server restart) is made again with
    // backoff and the query run again from the row after the last one read.
    const RetryPolicy retry{10, std::chrono::milliseconds(200), std::chrono::milliseconds(5000)};
    std::mt19937_64 rng{std::random_device{}()};
    for (int attempt = 1;; ++attempt) {
      std::shared_ptr<MysqlConnection> conn;
      std::exception_ptr error;
      bool lost = false;
      try {
        conn = co_await MysqlConnection::connect(run_.stage.io.get_executor(), cfg_->where, cfg_->connect_timeout);
        std::weak_ptr<MysqlConnection> weak = conn;
        run_.stage.control.on_abort([weak] {
          if (auto live = weak.lock()) live->interrupt();
        });
        // The server gives up on a client that does not read for net_write_timeout
        // (60 s): a slow sink is no reason to.
        co_await conn->exec("SET SESSION net_write_timeout = 86400");
        if (!cfg_->table.empty() && !ordered_) co_await order_table(*conn);
        if (!cfg_->incremental.empty()) co_await open_window(*conn);  // in a snapshot the query shares
        if (!input_.name().empty()) {
          std::string sql = select_sql();
          fields_ = co_await conn->stream(sql);
          reading_ = true;
          // The window's snapshot ends with its result read; a run cut short
          // (--limit, a stop) just drops the connection rather than read the rest.
          if (co_await read_rows(*conn, out) && input_.window()) co_await conn->exec("COMMIT");
        }
      } catch (const MysqlError& e) {
        // An incremental window is read in one snapshot: another one could hold
        // other rows, so the window is read again whole by the next run instead.
        lost = reading_ && e.kind == MysqlError::Kind::connection && cfg_->incremental.empty();
        // Before any row: the pipeline cannot start (exit 2); later: the run fails.
        if (reading_) error = std::make_exception_ptr(std::runtime_error("source mysql: " + std::string(e.what())));
        else error = std::make_exception_ptr(SetupError("source mysql: " + std::string(e.what())));
        if (lost && attempt <= retry.max_retries && !run_.stage.control.stopping()) {
          spdlog::warn("source mysql: {} (attempt {}, reading again from row {})", e.what(), attempt, read_ + 1);
        } else {
          lost = false;
        }
      }
      if (conn && !error) co_await conn->close(std::chrono::milliseconds(2000));
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
  std::string column() const { return "aetl_q." + mysql::quote_ident(cfg_->incremental); }
  static std::string literal(std::string_view v) {
    std::string out;
    mysql::append_quoted(out, v);
    return out;
  }

  /// Opens this run's window in a consistent snapshot that the query then reads
  /// too, so the rows counted are the rows read.
  asio::awaitable<void> open_window(MysqlConnection& c) {
    co_await c.exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    co_await c.exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
    QueryWindow w = input_.next_window();
    const bool again = input_.again();
    std::string where;
    if (w.low) where = " WHERE " + column() + " > " + literal(*w.low);
    if (again) where += (where.empty() ? " WHERE " : " AND ") + column() + " <= " + literal(w.high);
    std::string sql = "SELECT COUNT(*), CAST(MAX(" + column() + ") AS CHAR) FROM (" + cfg_->query + ") aetl_q" + where;
    mysql::MysqlRows r = co_await c.query(sql);
    uint64_t rows = r.rows.empty() || !r.rows[0][0] ? 0 : std::strtoull(r.rows[0][0]->c_str(), nullptr, 10);
    if (rows == 0 || !r.rows[0][1]) {  // nothing new: the last window's mark stays
      co_await c.exec("COMMIT");
      co_return;
    }
    if (!again) w.high = *r.rows[0][1];
    w.rows = rows;
    // Ties of the column are broken by every column, for a stable order.
    std::string probe = "SELECT * FROM (" + cfg_->query + ") aetl_q LIMIT 0";
    mysql::MysqlRows shape = co_await c.query(probe);
    columns_ = shape.columns.size();
    input_.open(w);
  }

  /// table: the primary key gives a stable order (resume and reconnect skip rows by number).
  asio::awaitable<void> order_table(MysqlConnection& c) {
    std::string sql =
        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE CONSTRAINT_NAME = 'PRIMARY' AND "
        "TABLE_SCHEMA = " + (cfg_->table_database.empty() ? std::string("DATABASE()") : literal(cfg_->table_database)) +
        " AND TABLE_NAME = " + literal(cfg_->table_name) + " ORDER BY ORDINAL_POSITION";
    mysql::MysqlRows r = co_await c.query(sql);
    std::string order;
    for (const auto& row : r.rows) order += (order.empty() ? "" : ", ") + mysql::quote_ident(row[0].value_or(""));
    if (order.empty())
      spdlog::warn("source mysql: table {} has no primary key: its rows come in no set order, so a resumed run may "
                   "miss or repeat some", cfg_->table);
    else
      query_ = "SELECT * FROM " + cfg_->table + " ORDER BY " + order;
    ordered_ = true;
  }

  std::string select_sql() const {
    std::string q = query_.empty() ? cfg_->query : query_;
    if (!input_.window()) return q;
    std::string select = "SELECT * FROM (" + q + ") aetl_q WHERE " + column() + " <= " + literal(input_.window()->high);
    if (input_.window()->low) select += " AND " + column() + " > " + literal(*input_.window()->low);
    select += " ORDER BY " + column();
    for (size_t i = 1; i <= columns_; ++i) select += ", " + std::to_string(i);
    return select;
  }

  /// True when the result was read to its end.
  asio::awaitable<bool> read_rows(MysqlConnection& c, BatchChannel& out) {
    uint64_t row = 0;  // rows of this reading (a reading again after a lost connection starts at 1)
    bool more = true;
    while (more && !run_.stage.control.stopping()) {
      size_t want = cfg_->batch;
      if (run_.limit) want = std::min<uint64_t>(want, run_.limit - emitted_);
      if (want == 0) break;
      Batch batch;
      batch.reserve(want);
      size_t fresh = 0;
      // read_ moves on only once the batch is sent: rows of a batch cut short by
      // a lost connection are read again.
      auto on_row = [&](const char* const* values, const unsigned long* lengths) {
        ++row;
        bool read_before = row <= read_;  // by this run, before the connection was lost
        if (!read_before) ++fresh;
        if (read_before || input_.mark().is_done(row)) return;
        Record r;
        r.pos = Position{0, row, row};
        row_json(fields_, values, lengths, r.data);
        batch.push_back(std::move(r));
      };
      more = co_await c.next_rows(want, on_row);
      stats_.in += fresh;
      stats_.out += batch.size();
      emitted_ += batch.size();
      if (!batch.empty()) co_await send_batch(out, std::move(batch));
      if (row > read_) read_ = row;
      if (run_.limit && emitted_ >= run_.limit) co_return !more;
    }
    co_return !more;
  }

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const MysqlSourceConfig> cfg_;
  QueryInput input_;  // the query's rows, or this run's window, and where to resume
  size_t columns_ = 0;  // the query's columns (a window's order names them all)
  std::vector<MysqlField> fields_;
  uint64_t emitted_ = 0;
  uint64_t read_ = 0;
  bool reading_ = false;
  bool ordered_ = false;
  std::string query_;  // table: the query with its primary key's ORDER BY
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"url", FieldType::string, "",
     "mysql://user:password@host:port/database (mariadb:// too); left-out parts from MYSQL_HOST, MYSQL_TCP_PORT, "
     "MYSQL_PWD and the login name",
     "\"mysql://etl:${MYSQL_PWD}@db/shop\""},
    {"query", FieldType::string, "", "the SELECT to read (give query or table)",
     "\"SELECT id, total FROM orders ORDER BY id\""},
    {"table", FieldType::string, "", "a table (name or database.name) read whole, in its primary key's order",
     "shop.orders"},
    {"batch", FieldType::integer, "5000", "rows per batch", "10000"},
    {"incremental.column", FieldType::string, "required",
     "each run reads only the rows whose column is past the last run's window", "updated_at"},
    {"connect_timeout", FieldType::duration, "10s", "how long connecting may take", "5s"},
};
const std::string_view kExamples[] = {
    "{url: \"mysql://etl@localhost/shop\", query: \"SELECT id FROM orders ORDER BY id\", batch: 1000, "
    "connect_timeout: 5s}",
    "{table: orders, incremental: {column: id}}",
};
}  // namespace
extern const KindFields mysql_source_fields{kFields, kExamples};

SourceBuilder parse_mysql_source(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) return {};
  auto cfg = std::make_shared<MysqlSourceConfig>();
  size_t before = problems.size();
  std::string url;
  std::optional<ConfigLocation> url_at;
  if (auto u = r.string("url")) url = u->text, url_at = u->where;
  std::string error;
  if (auto parsed = mysql::parse_mysql_url(url, error)) cfg->where = *parsed;
  else problems.add(url_at ? *url_at : r.where(), "url: " + error);
  auto query = r.string("query");
  auto table = r.string("table");
  if (query && table) problems.add(r.where(), "give query or table, not both");
  else if (!query && !table) problems.add(r.where(), "query (or table) is required");
  if (query) cfg->query = query->text;
  if (table) {
    std::string name = table->text;
    if (auto dot = name.find('.'); dot != std::string::npos) {
      cfg->table_database = name.substr(0, dot);
      name = name.substr(dot + 1);
    }
    cfg->table_name = name;
    cfg->table = (cfg->table_database.empty() ? "" : mysql::quote_ident(cfg->table_database) + ".") +
                 mysql::quote_ident(name);
    cfg->query = "SELECT * FROM " + cfg->table;
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
    return std::make_unique<MysqlSource>(run, run.add_part("mysql"), cfg);
  };
}

}  // namespace aetl
