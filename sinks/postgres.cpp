// The `postgres` sink: batches into a PostgreSQL table over COPY, on the event loop.
//   sink:
//     postgres:
//       dsn: "host=db.internal dbname=logs user=etl password=${PGPASSWORD}"   # "" or left out: PG* variables
//       table: events               # schema.table also works
//       columns: {id: bigint, url: text}   # or a list, or left out: the first record's fields
//       key: [id]                   # upsert through a staging table: replays are idempotent
//       exactly_once: true          # the checkpoint commits in the batch's transaction
//       create: true                # create a missing table (false: a missing table is an error)
//       pool: {min: 1, max: 2}
//       batch: {size: 40000, linger: 500ms}
// Each batch is one transaction: COPY FROM STDIN into the table (binary format when
// every column is an integer, float8, boolean, text, varchar or json(b) column and
// every value can go so as the server would read its text; else text), or
// into a temporary staging table then INSERT ... ON CONFLICT (key) DO UPDATE.
// A batch the server refuses for a bad row (class 22/23) is split, inside the
// transaction, under savepoints until the bad rows are found: they go to the
// dead letter with PostgreSQL's message, the good rows land. Values only ever
// travel as COPY data, never inside SQL text.
// The rows' COPY encoding is in sinks/postgres/copy_rows.h, the exactly-once
// checkpoint table in sinks/postgres/checkpoint_table.h; this file is the kind.
#include <algorithm>
#include <unordered_set>
#include <optional>
#include <boost/asio/co_spawn.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "engine/setup_error.h"
#include "engine/blocking_pool.h"
#include "expr/expression.h"
#include "engine/json_scan.h"
#include "config/kinds.h"
#include "net/sql_table.h"
#include "sinks/postgres/checkpoint_table.h"
#include "sinks/postgres/copy_rows.h"
#include "sinks/postgres/delivery_table.h"
#include "sinks/sql/delivery_ids.h"
#include "sinks/sql/sql_columns.h"
#include "net/pg/pg_pool.h"
#include "run/record_step.h"
#include "engine/shutdown.h"

namespace aetl {
namespace {

using pg::PgConnection;
using pg::PgError;
using Params = std::vector<std::optional<std::string>>;
// GCC 12 can destroy a temporary inside a co_await expression twice (a braced
// list, a string built with + or ?:): statements and parameters are named first.

using PgColumn = TableColumn;

struct PostgresConfig {
  std::string dsn;
  std::string schema;  // empty: the search path's
  std::string table;
  std::vector<PgColumn> columns;  // empty: the first record's fields
  std::vector<std::string> key;
  bool exactly_once = false;
  std::chrono::milliseconds remember_deliveries{kRememberDeliveriesDefault};
  bool create = true;
  size_t pool_min = 1;
  size_t pool_max = 2;
  std::chrono::milliseconds connect_timeout{10000};
};

class PostgresSink final : public PipelineSink {
 public:
  PostgresSink(RunContext& run, const PostgresConfig& cfg, const SinkIdentity& id)
      : run_(run),
        cfg_(cfg),
        checkpoints_((cfg.schema.empty() ? "" : quote_sql_ident(cfg.schema) + ".") + "aetl_checkpoints",
                     id.checkpoint_name),
        deliveries_((cfg.schema.empty() ? "" : quote_sql_ident(cfg.schema) + ".") + std::string(kDeliveryTable),
                    id.checkpoint_name) {
    target_ = (cfg_.schema.empty() ? "" : quote_sql_ident(cfg_.schema) + ".") + quote_sql_ident(cfg_.table);
    columns_ = cfg_.columns;
    if (!columns_.empty()) compile_columns();
  }

  std::string describe() const override { return "postgres " + cfg_.table; }
  /// Exactly once with a queue source: delivery IDs instead of a checkpoint.
  bool by_delivery() const { return cfg_.exactly_once && run_.queue_source; }

  /// With the columns known up front, records are encoded on the step lanes.
  std::shared_ptr<RecordStep> row_step() override {
    if (columns_.empty()) return nullptr;  // the first batch decides them
    return std::make_shared<RowStep>(*this);
  }
  bool exactly_once() const override { return cfg_.exactly_once; }

  std::optional<std::string> stored_checkpoint() override {
    // Before the run's loop starts: a connection of its own, on a loop of its own.
    std::optional<std::string> found;
    auto task = [this, &found](asio::any_io_executor ex) -> asio::awaitable<void> {
      auto c = co_await connect_or_usage_error(ex);
      std::exception_ptr error;
      try {
        co_await checkpoints_.ensure(*c);
        found = co_await checkpoints_.read(*c);
      } catch (const PgError& e) {
        error = std::make_exception_ptr(SetupError("postgres " + checkpoints_.name() + " (the checkpoint): " + e.what()));
      }
      if (error) std::rethrow_exception(error);
    };
    run_alone(task);
    return found;
  }

  asio::awaitable<void> open(const Checkpoint*, const std::string&) override {
    pool_ = std::make_unique<pg::PgPool>(run_.stage.io.get_executor(), cfg_.dsn, cfg_.pool_min, cfg_.pool_max,
                                         cfg_.connect_timeout);
    std::exception_ptr error;
    try {
      co_await pool_->open();
    } catch (const PgError& e) {
      error = std::make_exception_ptr(SetupError(e.what()));
    }
    if (error) std::rethrow_exception(error);
    run_.stage.control.on_abort([this] { pool_->interrupt_all(); });
    auto c = co_await pool_->acquire();
    try {
      co_await look_up_table(*c);
      if (!columns_.empty()) encoder_.set_columns(columns_, table_columns_);  // now that the table's types are known
      if (by_delivery()) co_await deliveries_.ensure(*c);
      else if (cfg_.exactly_once) co_await checkpoints_.ensure(*c);
    } catch (const PgError& e) {
      error = std::make_exception_ptr(SetupError("postgres " + cfg_.table + ": " + e.what()));
    }
    pool_->release(std::move(c));
    if (error) std::rethrow_exception(error);
  }

  asio::awaitable<std::shared_ptr<void>> prepare(const Batch& batch) override {
    if (columns_.empty()) co_return nullptr;  // the first batch decides the columns
    auto rows = std::make_shared<CopyRows>();
    auto job = [this, &batch, rows]() { encoder_.make_rows(batch, *rows, *prep_eval_); };
    co_await run_blocking(run_.stage.pool.pool(), job);
    co_return rows;
  }

  asio::awaitable<bool> write(const Batch& batch, WriteContext& wc) override {
    std::shared_ptr<CopyRows> rows = std::static_pointer_cast<CopyRows>(wc.prepared);
    if (!rows) {
      if (columns_.empty()) co_await columns_from(batch.front().data);
      rows = std::make_shared<CopyRows>();
      // Its own evaluator: prepare() may be working on the next batch meanwhile.
      auto job = [this, &batch, rows]() { encoder_.make_rows(batch, *rows, *write_eval_); };
      co_await run_blocking(run_.stage.pool.pool(), job);
    }
    std::unique_ptr<PgConnection> c;
    std::exception_ptr error;
    bool transient = false;
    try {
      c = co_await pool_->acquire();
      co_await write_batch(*c, *rows, wc);
    } catch (const PgError& e) {
      transient = e.kind == PgError::Kind::connection;
      error = std::make_exception_ptr(SinkError(e.what(), transient));
    } catch (...) {
      error = std::current_exception();  // the connection still goes back to the pool
    }
    if (c && error && !c->broken()) {
      // A failed statement leaves the transaction aborted: end it before reuse.
      try {
        co_await c->exec("ROLLBACK");
      } catch (const PgError&) {
      }
    }
    pool_->release(std::move(c));
    if (error) std::rethrow_exception(error);
    co_return true;
  }

  asio::awaitable<void> close() override { co_return; }

  asio::awaitable<void> store_checkpoint(std::string checkpoint) override {
    auto c = co_await pool_->acquire();
    std::exception_ptr error;
    try {
      std::string token = checkpoints_.new_token();
      if (!co_await checkpoints_.compare_and_set(*c, checkpoint, token))
        throw CheckpointTakenOver(taken_over_message(describe(), run_.pipeline_name));
      checkpoints_.committed(token);
    } catch (const PgError& e) {
      error = std::make_exception_ptr(SinkError(e.what(), e.kind == PgError::Kind::connection));
    } catch (...) {
      error = std::current_exception();  // the connection still goes back to the pool
    }
    pool_->release(std::move(c));
    if (error) std::rethrow_exception(error);
  }

 private:
  asio::awaitable<std::unique_ptr<PgConnection>> connect_or_usage_error(asio::any_io_executor ex) {
    std::unique_ptr<PgConnection> c;
    std::exception_ptr error;
    try {
      c = co_await PgConnection::connect(ex, cfg_.dsn, cfg_.connect_timeout);
    } catch (const PgError& e) {
      error = std::make_exception_ptr(SetupError(e.what()));
    }
    if (error) std::rethrow_exception(error);
    co_return c;
  }

  /// The table's columns if it exists; a missing table is created at the first
  /// batch (or is an error with create: false).
  asio::awaitable<void> look_up_table(PgConnection& c) {
    Params params{target_};
    std::string_view sql =
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
    pg::PgResult r = co_await c.exec_params(sql, params);
    for (int i = 0; i < r.rows(); ++i) table_columns_.push_back({std::string(r.value(i, 0)), std::string(r.value(i, 1))});
    table_exists_ = r.rows() > 0;
    if (!table_exists_) {
      pg::PgResult t = co_await c.exec_params("SELECT to_regclass($1) IS NOT NULL", params);
      table_exists_ = t.rows() == 1 && t.value(0, 0) == "t";  // a table with no columns
    }
    if (!table_exists_ && !cfg_.create)
      throw PgError("table " + target_ + " does not exist (create: false)", PgError::Kind::query, "42P01");
    if (table_exists_) {
      // Said now, with the table's name, rather than at the first batch.
      Params what{target_};
      std::string_view sql = "SELECT has_table_privilege(to_regclass($1), 'INSERT')";
      pg::PgResult p = co_await c.exec_params(sql, what);
      if (p.rows() == 1 && p.value(0, 0) == "f")
        throw PgError("permission denied: no INSERT on table " + target_, PgError::Kind::query, "42501");
    } else {
      std::string schema = cfg_.schema.empty() ? "current_schema()" : c.literal(cfg_.schema);
      std::string sql = "SELECT has_schema_privilege(" + schema + ", 'CREATE')";
      pg::PgResult p = co_await c.exec(sql);
      if (p.rows() == 1 && p.value(0, 0) == "f")
        throw PgError("permission denied: cannot create table " + target_ + " (no CREATE on its schema)",
                      PgError::Kind::query, "42501");
    }
    for (const auto& k : cfg_.key) {
      if (!table_exists_ || std::any_of(table_columns_.begin(), table_columns_.end(),
                                        [&](const PgColumn& col) { return col.name == k; }))
        continue;
      throw PgError("key column '" + k + "' is not in table " + target_, PgError::Kind::query, "42703");
    }
  }

  /// Without `columns:`, the first record's fields that the table has (all of
  /// them for a table still to create, typed by their JSON values).
  asio::awaitable<void> columns_from(const std::string& record) {
    std::vector<PgColumn> cols;
    for_each_member(record, 0, [&](const JsonMember& m) {
      std::string name = json_unescape(m.raw_key);
      std::string_view v = std::string_view(record).substr(m.value_begin, m.value_end - m.value_begin);
      std::string type = "text";
      char c = v.empty() ? 'n' : v.front();
      if (c == '{' || c == '[') type = "jsonb";
      else if (c == 't' || c == 'f') type = "boolean";
      else if (c == '-' || (c >= '0' && c <= '9'))
        type = v.find_first_of(".eE") == std::string_view::npos ? "bigint" : "double precision";
      if (table_exists_ && std::none_of(table_columns_.begin(), table_columns_.end(),
                                        [&](const PgColumn& col) { return col.name == name; }))
        return;
      cols.push_back({name, type});
    });
    if (cols.empty()) throw SinkError("the first record has no fields that are columns of " + target_, false);
    columns_ = cols;
    compile_columns();
    co_return;
  }

  void compile_columns() {
    program_ = std::make_unique<expr::Program>();
    for (const auto& c : columns_) program_->add(expr::field_expression(c.name));
    prep_eval_ = std::make_unique<expr::Evaluator>(*program_, /*exact_numbers=*/true);
    write_eval_ = std::make_unique<expr::Evaluator>(*program_, /*exact_numbers=*/true);
    column_list_.clear();
    for (const auto& c : columns_) column_list_ += (column_list_.empty() ? "" : ", ") + quote_sql_ident(c.name);
    encoder_.set_columns(columns_, table_columns_);
  }

  /// Encodes records into COPY rows on the record-step lanes, as they come out of
  /// the steps in front of the sink (reading the values a select left, so the
  /// record is not parsed again). A record it cannot read is left to make_rows.
  class RowStep final : public RecordStep {
   public:
    explicit RowStep(const PostgresSink& sink) : sink_(sink) {
      for (size_t i = 0; i < step_lanes(); ++i)
        evals_.push_back(std::make_unique<expr::Evaluator>(*sink.program_, /*exact_numbers=*/true));
    }
    Verdict apply(size_t lane, StepRecord& rec, std::string& error) override {
      expr::Evaluator& eval = *evals_[lane];
      if (!rec.rows || !bind_step_record(eval, rec, error)) return Verdict::keep;  // make_rows says why
      size_t at = rec.rows->size();
      if (at > UINT32_MAX - (1u << 24)) return Verdict::keep;  // past what a slice reaches: make_rows encodes it
      if (!sink_.encoder_.append_row(eval, *rec.rows, sink_.encoder_.binary())) return Verdict::keep;  // make_rows sends the batch in text
      rec.row_at = static_cast<uint32_t>(at);
      rec.row_size = static_cast<uint32_t>(rec.rows->size() - at);
      return Verdict::keep;
    }

   private:
    const PostgresSink& sink_;
    std::vector<std::unique_ptr<expr::Evaluator>> evals_;  // one per lane
  };

  asio::awaitable<void> create_table(PgConnection& c) {
    std::string sql = "CREATE TABLE IF NOT EXISTS " + target_ + " (";
    for (size_t i = 0; i < columns_.size(); ++i)
      sql += (i ? ", " : "") + quote_sql_ident(columns_[i].name) + " " + (columns_[i].type.empty() ? "text" : columns_[i].type);
    if (!cfg_.key.empty()) {
      sql += ", PRIMARY KEY (";
      for (size_t i = 0; i < cfg_.key.size(); ++i) sql += (i ? ", " : "") + quote_sql_ident(cfg_.key[i]);
      sql += ")";
    }
    sql += ")";
    co_await pg::create_if_missing(c, sql);
    table_exists_ = true;
  }

  /// One transaction: the rows (bad ones split off under savepoints), the
  /// checkpoint if exactly once, commit.
  asio::awaitable<void> write_batch(PgConnection& c, const CopyRows& rows, WriteContext& wc) {
    if (!table_exists_) co_await create_table(c);
    if (!cfg_.key.empty() && !c.has("aetl_staging")) co_await make_staging(c);
    if (!wc.delivery_ids.empty()) {
      co_await write_batch_by_delivery(c, rows, wc);
      co_return;
    }
    co_await c.exec("BEGIN");
    if (cfg_.exactly_once) {
      co_await checkpoints_.lock(c);
      if (!last_token_.empty()) {
        // The connection broke during the last attempt: did its COMMIT land?
        if (co_await checkpoints_.holds(c, last_token_)) {
          co_await c.exec("COMMIT");
          wc.rejected = last_rejected_;
          checkpoints_.committed(last_token_);
          last_token_.clear();
          co_return;
        }
      }
    }
    std::vector<std::pair<size_t, std::string>> rejected;
    auto lock_again = [&]() -> asio::awaitable<void> {
      if (cfg_.exactly_once) co_await checkpoints_.lock(c);
    };
    co_await write_rows_of_batch(c, rows, rejected, lock_again);
    if (cfg_.exactly_once) {
      std::string token = checkpoints_.new_token();
      if (!co_await checkpoints_.compare_and_set(c, wc.checkpoint_after(rejected), token)) {
        co_await c.exec("ROLLBACK");
        throw CheckpointTakenOver(taken_over_message(describe(), run_.pipeline_name));
      }
      last_token_ = token;
      last_rejected_ = rejected;
    }
    co_await c.exec("COMMIT");
    if (cfg_.exactly_once) checkpoints_.committed(last_token_);
    last_token_.clear();
    wc.rejected = std::move(rejected);
  }

  /// Exactly once with a queue source: the rows of records no earlier delivery
  /// committed, then the IDs of those written, last before COMMIT (so a worker
  /// stopped mid-batch holds none of them, except idle right before its COMMIT,
  /// which the server ends). If one was kept meanwhile by another worker's commit,
  /// the batch is rolled back and made again without it.
  asio::awaitable<void> write_batch_by_delivery(PgConnection& c, const CopyRows& all_rows, WriteContext& wc) {
    if (!c.has("aetl_idle_timeout")) {
      // A batch's statements follow one another with no wait between them, so a
      // live worker is never idle in its transaction for long.
      co_await c.exec("SET idle_in_transaction_session_timeout = '15s'");
      c.made("aetl_idle_timeout");
    }
    for (int attempt = 1;; ++attempt) {
      co_await c.exec("BEGIN");
      bool forgot = co_await deliveries_.forget_older_than(c, cfg_.remember_deliveries);
      // First deliveries cannot have been committed by another (unless one was
      // taken over from this worker while it stood still, which keep() finds):
      // their IDs are not looked up, only kept.
      const bool looked = !wc.first_deliveries || wc.attempt > 1 || attempt > 1;
      std::vector<bool> kept(wc.delivery_ids.size());
      if (looked) kept = co_await deliveries_.find(c, wc.delivery_ids);
      skip_repeated_ids(wc.delivery_ids, kept);
      CopyRows rows;  // views into all_rows' buffers
      rows.binary = all_rows.binary;
      for (size_t i = 0; i < all_rows.row.size(); ++i) {
        if (kept[all_rows.record[i]]) continue;
        rows.row.push_back(all_rows.row[i]);
        rows.record.push_back(all_rows.record[i]);
      }
      for (const auto& u : all_rows.unreadable)
        if (!kept[u.first]) rows.unreadable.push_back(u);
      std::vector<std::pair<size_t, std::string>> rejected;
      auto forget_again = [&]() -> asio::awaitable<void> {  // the ROLLBACK undid it
        forgot = co_await deliveries_.forget_older_than(c, cfg_.remember_deliveries);
      };
      co_await write_rows_of_batch(c, rows, rejected, forget_again);
      if (!looked && !rejected.empty()) {
        // A refused row may be one an earlier delivery committed (the table has a
        // unique key; the group was set back, XGROUP SETID): made again, looked up.
        co_await c.exec("ROLLBACK");
        continue;
      }
      // A refused record's ID is not kept: a later delivery of it is judged again.
      std::vector<bool> not_written = kept;
      for (const auto& r : rejected) not_written[r.first] = true;
      if (!co_await deliveries_.keep(c, wc.delivery_ids, not_written)) {
        co_await c.exec("ROLLBACK");
        if (attempt >= 5) throw SinkError("the same entries keep being committed by another worker", true);
        continue;
      }
      co_await c.exec("COMMIT");
      if (forgot) deliveries_.forgotten();
      for (size_t k = 0; k < kept.size(); ++k)
        if (kept[k]) wc.redelivered.push_back(k);
      wc.rejected = std::move(rejected);
      co_return;
    }
  }

  /// In the open transaction: all of `rows` at once; only if a row is refused,
  /// again (after ROLLBACK, BEGIN and `again_begun`) with the bad rows split off
  /// under savepoints (a savepoint per batch costs on every batch). `rejected`
  /// gets the unreadable records and the refused rows' records, sorted.
  template <class AgainBegun>
  asio::awaitable<void> write_rows_of_batch(PgConnection& c, const CopyRows& rows,
                                            std::vector<std::pair<size_t, std::string>>& rejected, AgainBegun again_begun) {
    rejected = rows.unreadable;
    std::optional<PgError> bad;
    if (!rows.row.empty()) {
      try {
        co_await copy(c, rows, 0, rows.row.size());
      } catch (const PgError& e) {
        if (!e.bad_row()) throw;
        bad = e;
      }
    }
    if (bad) {
      co_await c.exec("ROLLBACK");
      co_await c.exec("BEGIN");
      co_await again_begun();
      co_await write_rows(c, rows, 0, rows.record.size(), rejected);
    }
    std::sort(rejected.begin(), rejected.end());
  }

  asio::awaitable<void> make_staging(PgConnection& c) {
    // Per connection (temporary): a new connection after a lost one makes its
    // own. aetl_seq keeps the last of a key that comes twice in one batch.
    std::string sql = "CREATE TEMP TABLE IF NOT EXISTS aetl_staging AS SELECT " + column_list_ + " FROM " + target_ +
                      " WITH NO DATA; ALTER TABLE aetl_staging ADD COLUMN IF NOT EXISTS aetl_seq bigserial";
    co_await c.exec(sql);
    c.made("aetl_staging");
  }

  /// Rows [from, to) under a savepoint; a bad row makes it split in halves.
  asio::awaitable<void> write_rows(PgConnection& c, const CopyRows& rows, size_t from, size_t to,
                                   std::vector<std::pair<size_t, std::string>>& rejected) {
    if (from == to) co_return;
    std::optional<PgError> bad;
    try {
      co_await c.exec("SAVEPOINT aetl_rows");
      co_await copy(c, rows, from, to);
      co_await c.exec("RELEASE SAVEPOINT aetl_rows");
    } catch (const PgError& e) {
      if (!e.bad_row()) throw;
      bad = e;
    }
    if (!bad) co_return;
    co_await c.exec("ROLLBACK TO SAVEPOINT aetl_rows");
    if (to - from == 1) {
      rejected.emplace_back(rows.record[from], bad->what());
      co_return;
    }
    size_t mid = from + (to - from) / 2;
    co_await write_rows(c, rows, from, mid, rejected);
    co_await write_rows(c, rows, mid, to, rejected);
  }

  /// Rows [from, to) of `rows` by COPY (into the staging table first with `key`).
  asio::awaitable<void> copy(PgConnection& c, const CopyRows& rows, size_t from, size_t to) {
    bool binary = rows.binary;
    std::vector<std::string_view> pieces;
    if (binary) pieces.push_back(kCopyBinaryHeader);
    for (std::string_view p : rows.pieces(from, to)) pieces.push_back(p);
    if (binary) pieces.push_back(kCopyBinaryTrailer);
    std::string format = binary ? " (FORMAT binary)" : "";
    if (cfg_.key.empty()) {
      std::string sql = "COPY " + target_ + " (" + column_list_ + ") FROM STDIN" + format;
      co_await c.copy_in(sql, pieces);
      co_return;
    }
    std::string copy_sql = "COPY aetl_staging (" + column_list_ + ") FROM STDIN" + format;
    co_await c.copy_in(copy_sql, pieces);
    std::string keys, updates;
    for (const auto& k : cfg_.key) keys += (keys.empty() ? "" : ", ") + quote_sql_ident(k);
    for (const auto& col : columns_) {
      if (std::find(cfg_.key.begin(), cfg_.key.end(), col.name) != cfg_.key.end()) continue;
      updates += (updates.empty() ? "" : ", ") + quote_sql_ident(col.name) + " = EXCLUDED." + quote_sql_ident(col.name);
    }
    std::string upsert = "INSERT INTO " + target_ + " (" + column_list_ + ") SELECT DISTINCT ON (" + keys + ") " +
                         column_list_ + " FROM aetl_staging ORDER BY " + keys + ", aetl_seq DESC ON CONFLICT (" + keys +
                         ") DO ";
    upsert += updates.empty() ? "NOTHING" : "UPDATE SET " + updates;
    upsert += "; TRUNCATE aetl_staging";
    co_await c.exec(upsert);
  }

  RunContext& run_;
  PostgresConfig cfg_;
  std::string target_;       // quoted, maybe schema-qualified
  PgCheckpointTable checkpoints_;  // exactly once: aetl_checkpoints beside it
  PgDeliveryTable deliveries_;     // exactly once with a queue source: aetl_deliveries beside it
  std::unique_ptr<pg::PgPool> pool_;
  std::vector<PgColumn> columns_;
  std::vector<PgColumn> table_columns_;
  bool table_exists_ = false;
  std::string column_list_;
  CopyEncoder encoder_;  // the columns' COPY rows (binary when every column allows)
  std::unique_ptr<expr::Program> program_;
  std::unique_ptr<expr::Evaluator> prep_eval_;   // one prepare at a time
  std::unique_ptr<expr::Evaluator> write_eval_;  // a batch that came unprepared (the first)
  std::string last_token_;  // exactly once: the batch whose COMMIT is not known to have landed
  std::vector<std::pair<size_t, std::string>> last_rejected_;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"dsn", FieldType::string, "", "a libpq connection string or URI; empty: the PG* environment variables",
     "\"postgresql://etl:${PGPASSWORD}@db/shop\""},
    {"table", FieldType::string, "required", "the table: name or schema.name", "public.events"},
    {"columns", FieldType::columns, "",
     "{name: TYPE} or a list of names (default: the first record's fields, typed from their values)",
     "{id: bigint, payload: jsonb}"},
    {"key", FieldType::list, "", "primary key or unique columns: rows are upserted, so replays are idempotent",
     "[id]"},
    {"exactly_once", FieldType::boolean, "false", "store the checkpoint in the same transaction as each batch",
     "true"},
    kRememberDeliveriesField,
    {"create", FieldType::boolean, "true", "create a missing table (false: a missing table is an error)", "false"},
    {"connect_timeout", FieldType::duration, "10s", "how long connecting may take", "5s"},
    {"pool.min", FieldType::integer, "1", "connections opened before the run starts", "2"},
    {"pool.max", FieldType::integer, "2", "connections at most", "4"},
};
const std::string_view kExamples[] = {
    "{dsn: \"host=localhost dbname=shop\", table: public.events, columns: {id: bigint, payload: jsonb}, key: [id], "
    "exactly_once: true, remember_deliveries: 30d, create: false, connect_timeout: 5s, pool: {min: 1, max: 4}}",
    "{table: events, columns: [id, payload]}",
};
const FieldDefault kCommonDefaults[] = {
    {"batch.size", "40000"}, {"batch.linger", "500ms"}, {"retry.max", "10"}, {"retry.backoff", "200ms..5s"}};
}  // namespace
extern const KindFields postgres_sink_fields{kFields, kExamples, kCommonDefaults};

SinkBuilder parse_postgres_sink(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common) {
  auto cfg = std::make_shared<PostgresConfig>();
  // Each batch commits (one fsync on the server): big batches come near a single
  // COPY's speed (40000 rows: ~0.9x psql \copy, 10000: ~0.7x), at ~40 MB more memory.
  common.batching.size = 40000;
  common.batching.linger = std::chrono::milliseconds(500);
  // Enough retries to ride out a server restart (about 15 s of backoff in all).
  common.retry = RetryPolicy{10, std::chrono::milliseconds(200), std::chrono::milliseconds(5000)};
  size_t before = problems.size();
  ConfigReader r(node, problems, {kFields, sink_common_fields()});
  if (!r.ok()) return {};
  if (auto d = r.string("dsn")) cfg->dsn = d->text;
  if (auto t = r.string("table", true)) {
    std::string name = t->text;
    if (auto dot = name.find('.'); dot != std::string::npos) {
      cfg->schema = name.substr(0, dot);
      name = name.substr(dot + 1);
    }
    if (name.empty() || (t->text.find('.') != std::string::npos && cfg->schema.empty()))
      problems.add(t->where, "table: an empty name");
    cfg->table = name;
  }
  read_columns_and_key(r, problems, is_postgres_type, "bigint, text, varchar(20), numeric(10,2), jsonb, text[]", cfg->columns,
                       cfg->key);
  if (auto e = r.boolean("exactly_once")) cfg->exactly_once = common.exactly_once = *e;
  if (auto d = r.duration("remember_deliveries")) cfg->remember_deliveries = std::max(*d, std::chrono::milliseconds(1000));
  if (auto e = r.boolean("create")) cfg->create = *e;
  if (auto t = r.duration("connect_timeout")) cfg->connect_timeout = *t;
  if (auto p = r.section("pool")) {
    if (auto n = p->integer("min", 0, 100)) cfg->pool_min = static_cast<size_t>(*n);
    if (auto n = p->integer("max", 1, 100)) cfg->pool_max = static_cast<size_t>(*n);
    p->finish();
    if (cfg->pool_min > cfg->pool_max) problems.add(p->where(), "pool: min is more than max");
  }
  read_sink_common(r, common);
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run, const SinkIdentity& id) -> std::unique_ptr<PipelineSink> {
    return std::make_unique<PostgresSink>(run, *cfg, id);
  };
}

}  // namespace aetl
