// The `mysql` sink: batches into a MariaDB or MySQL table, on the event loop.
//   sink:
//     mysql:
//       url: "mysql://etl:${MYSQL_PWD}@db.internal:3306/shop"   # left-out parts: MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_PWD
//       table: events               # database.table also works
//       columns: {id: bigint, url: text}   # or a list, or left out: the first record's fields
//       key: [id]                   # upsert (ON DUPLICATE KEY UPDATE): replays are idempotent
//       exactly_once: true          # the checkpoint commits in the batch's transaction
//       create: true                # create a missing table (false: a missing table is an error)
//       pool: {min: 1, max: 2}
//       batch: {size: 20000, linger: 500ms}
// Each batch is one transaction: LOAD DATA LOCAL INFILE fed from memory (into a
// temporary staging table, then INSERT ... SELECT ... ON DUPLICATE KEY UPDATE,
// with `key:`). LOAD DATA LOCAL turns a value it cannot take into a warning
// whatever the sql_mode: a batch that raised one, or lost a row, is rolled back
// and sent again as multi-row INSERT statements, each as long as the server's
// max_allowed_packet allows (4 MiB at most), which the server judges strictly
// (so does a server that refuses LOCAL, with load_data: false). A statement the server
// refuses for a bad row (SQLSTATE class 22/23, a value the column cannot take)
// is undone alone (InnoDB rolls back the statement, not the transaction) and
// split in halves until the bad rows are found: they go to the dead letter with
// the server's message, the good rows land. The table should be InnoDB: a
// MyISAM table cannot roll a batch back.
// The value lists are made in sinks/mysql/insert_rows.h, the exactly-once
// checkpoint table is sinks/mysql/checkpoint_table.h; this file is the kind.
#include <algorithm>
#include <optional>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "config/kinds.h"
#include "engine/blocking_pool.h"
#include "engine/json_scan.h"
#include "engine/setup_error.h"
#include "engine/shutdown.h"
#include "expr/expression.h"
#include "net/connection_pool.h"
#include "net/mysql/mysql_connection.h"
#include "net/sql_table.h"
#include "run/record_step.h"
#include "sinks/mysql/checkpoint_table.h"
#include "sinks/mysql/delivery_table.h"
#include "sinks/sql/delivery_ids.h"
#include "sinks/mysql/insert_rows.h"
#include "sinks/sql/sql_columns.h"

namespace aetl {
namespace {

using mysql::MysqlConnection;
using mysql::MysqlError;
using Rejected = std::vector<std::pair<size_t, std::string>>;
// GCC 12 can destroy a temporary inside a co_await expression twice (a braced
// list, a string built with + or ?:): statements are named first.

/// The longest statement sent, whatever max_allowed_packet allows: longer ones
/// gain nothing measurable and cost memory on both sides.
constexpr size_t kStatementBytes = 4 << 20;
constexpr std::chrono::milliseconds kCloseDeadline{2000};

struct MysqlSinkConfig {
  std::string url;
  mysql::MysqlUrl where;  // parsed
  std::string database;   // empty: the url's
  std::string table;
  std::vector<TableColumn> columns;  // empty: the first record's fields
  std::vector<std::string> key;
  bool exactly_once = false;
  std::chrono::milliseconds remember_deliveries{kRememberDeliveriesDefault};
  bool create = true;
  bool load_data = true;
  size_t pool_min = 1;
  size_t pool_max = 2;
  std::chrono::milliseconds connect_timeout{10000};
};

class MysqlPool : public ConnectionPool<MysqlConnection> {
 public:
  MysqlPool(asio::any_io_executor ex, const mysql::MysqlUrl& url, size_t min, size_t max,
            std::chrono::milliseconds timeout)
      : ConnectionPool<MysqlConnection>(
            ex, [ex, url, timeout] { return MysqlConnection::connect(ex, url, timeout); }, min, max) {}
};

class MysqlSink final : public PipelineSink {
 public:
  MysqlSink(RunContext& run, const MysqlSinkConfig& cfg, const SinkIdentity& id)
      : run_(run),
        cfg_(cfg),
        checkpoints_((cfg.database.empty() ? "" : mysql::quote_ident(cfg.database) + ".") + "aetl_checkpoints",
                     id.checkpoint_name),
        deliveries_((cfg.database.empty() ? "" : mysql::quote_ident(cfg.database) + ".") + std::string(kDeliveryTable),
                    id.checkpoint_name) {
    target_ = (cfg_.database.empty() ? "" : mysql::quote_ident(cfg_.database) + ".") + mysql::quote_ident(cfg_.table);
    // Beside the table: a url without a database still has one for it.
    staging_ = (cfg_.database.empty() ? "" : mysql::quote_ident(cfg_.database) + ".") + "aetl_staging";
    columns_ = cfg_.columns;
    if (!columns_.empty()) compile_columns();
  }

  std::string describe() const override { return "mysql " + cfg_.table; }

  /// With the columns known up front, records are made into LOAD DATA lines on
  /// the step lanes (from the values the steps left, without parsing again).
  std::shared_ptr<RecordStep> row_step() override {
    if (columns_.empty() || !cfg_.load_data) return nullptr;
    return std::make_shared<RowStep>(*this);
  }
  bool exactly_once() const override { return cfg_.exactly_once; }
  /// Exactly once with a queue source: delivery IDs instead of a checkpoint.
  bool by_delivery() const { return cfg_.exactly_once && run_.queue_source; }

  std::optional<std::string> stored_checkpoint() override {
    // Before the run's loop starts: a connection of its own, on a loop of its own.
    std::optional<std::string> found;
    auto task = [this, &found](asio::any_io_executor ex) -> asio::awaitable<void> {
      std::unique_ptr<MysqlConnection> c;
      std::exception_ptr error;
      try {
        c = co_await MysqlConnection::connect(ex, cfg_.where, cfg_.connect_timeout);
        co_await check_database(*c);
        co_await checkpoints_.ensure(*c);
        found = co_await checkpoints_.read(*c);
      } catch (const MysqlError& e) {
        std::string what = c ? "mysql " + cfg_.table + " (the checkpoint): " + e.what() : std::string(e.what());
        error = std::make_exception_ptr(SetupError(what));
      }
      if (c) co_await c->close(kCloseDeadline);
      if (error) std::rethrow_exception(error);
    };
    run_alone(task);
    return found;
  }

  asio::awaitable<void> open(const Checkpoint*, const std::string&) override {
    pool_ = std::make_unique<MysqlPool>(run_.stage.io.get_executor(), cfg_.where, cfg_.pool_min, cfg_.pool_max,
                                        cfg_.connect_timeout);
    std::exception_ptr error;
    try {
      co_await pool_->open();
    } catch (const MysqlError& e) {
      error = std::make_exception_ptr(SetupError(e.what()));
    }
    if (error) std::rethrow_exception(error);
    run_.stage.control.on_abort([this] { pool_->interrupt_all(); });
    std::unique_ptr<MysqlConnection> c;
    try {
      c = co_await pool_->acquire();
      co_await check_database(*c);
      co_await look_up_table(*c);
      if (!columns_.empty()) encoder_.set_columns(columns_, table_columns_);  // now that the table's types are known
      if (by_delivery()) co_await deliveries_.ensure(*c);
      else if (cfg_.exactly_once) co_await checkpoints_.ensure(*c);
    } catch (const MysqlError& e) {
      error = std::make_exception_ptr(SetupError("mysql " + cfg_.table + ": " + e.what()));
    }
    pool_->release(std::move(c));
    if (error) std::rethrow_exception(error);
  }

  asio::awaitable<std::shared_ptr<void>> prepare(const Batch& batch) override {
    if (columns_.empty()) co_return nullptr;  // the first batch decides the columns
    auto rows = std::make_shared<InsertRows>();
    bool load = use_load();
    auto job = [this, &batch, rows, load]() { encoder_.make_rows(batch, *rows, *prep_eval_, load); };
    co_await run_blocking(run_.stage.pool.pool(), job);
    co_return rows;
  }

  asio::awaitable<bool> write(const Batch& batch, WriteContext& wc) override {
    std::shared_ptr<InsertRows> rows = std::static_pointer_cast<InsertRows>(wc.prepared);
    if (!rows) {
      if (columns_.empty()) co_await columns_from(batch.front().data);
      rows = std::make_shared<InsertRows>();
      // Its own evaluator: prepare() may be working on the next batch meanwhile.
      bool load = use_load();
      auto job = [this, &batch, rows, load]() { encoder_.make_rows(batch, *rows, *write_eval_, load); };
      co_await run_blocking(run_.stage.pool.pool(), job);
    }
    // A batch LOAD DATA did not take as it is comes back here as INSERT statements.
    auto as_inserts = [this, &batch]() -> asio::awaitable<std::shared_ptr<InsertRows>> {
      auto again = std::make_shared<InsertRows>();
      auto job = [this, &batch, again]() { encoder_.make_rows(batch, *again, *write_eval_, false); };
      co_await run_blocking(run_.stage.pool.pool(), job);
      co_return again;
    };
    std::unique_ptr<MysqlConnection> c;
    std::exception_ptr error;
    try {
      c = co_await pool_->acquire();
      co_await write_batch(*c, rows, wc, as_inserts);
    } catch (const MysqlError& e) {
      error = std::make_exception_ptr(SinkError(e.what(), e.kind == MysqlError::Kind::connection));
    } catch (...) {
      error = std::current_exception();  // the connection still goes back to the pool
    }
    if (c && error && !c->broken()) {
      try {
        co_await c->exec("ROLLBACK");
      } catch (const MysqlError&) {
      }
    }
    pool_->release(std::move(c));
    if (error) std::rethrow_exception(error);
    co_return true;
  }

  asio::awaitable<void> close() override {
    if (!pool_) co_return;
    // COM_QUIT to each, all within one deadline (a paused server does not
    // answer); none when the run is aborting: the sockets are just shut.
    auto idle = pool_->take_idle();
    if (run_.stage.control.aborted()) co_return;
    auto end = std::chrono::steady_clock::now() + kCloseDeadline;
    for (auto& c : idle) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      co_await c->close(std::max(left, std::chrono::milliseconds(0)));
    }
  }

  asio::awaitable<void> store_checkpoint(std::string checkpoint) override {
    auto c = co_await pool_->acquire();
    std::exception_ptr error;
    try {
      co_await c->exec("START TRANSACTION");
      co_await checkpoints_.lock(*c);
      std::string token = checkpoints_.new_token();
      if (!co_await checkpoints_.compare_and_set(*c, checkpoint, token))
        throw CheckpointTakenOver(taken_over_message(describe(), run_.pipeline_name));
      co_await c->exec("COMMIT");
      checkpoints_.committed(token);
    } catch (const MysqlError& e) {
      error = std::make_exception_ptr(SinkError(e.what(), e.kind == MysqlError::Kind::connection));
    } catch (...) {
      error = std::current_exception();
    }
    if (error && !c->broken()) {
      try {
        co_await c->exec("ROLLBACK");
      } catch (const MysqlError&) {
      }
    }
    pool_->release(std::move(c));
    if (error) std::rethrow_exception(error);
  }

 private:
  /// A table without a database needs the url's.
  asio::awaitable<void> check_database(MysqlConnection& c) {
    if (!cfg_.database.empty()) co_return;
    mysql::MysqlRows r = co_await c.query("SELECT DATABASE()");
    if (r.rows.empty() || !r.rows[0][0])
      throw MysqlError("no database: name one in the url (mysql://host/shop) or in the table (shop." + cfg_.table +
                           ")",
                       MysqlError::Kind::query, 1046);
  }

  std::string schema_literal() const {
    if (cfg_.database.empty()) return "DATABASE()";
    std::string s;
    mysql::append_quoted(s, cfg_.database);
    return s;
  }

  /// The table's columns if it exists; a missing table is created at the first
  /// batch (or is an error with create: false).
  asio::awaitable<void> look_up_table(MysqlConnection& c) {
    std::string sql = "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = " +
                      schema_literal() + " AND TABLE_NAME = ";
    mysql::append_quoted(sql, cfg_.table);
    sql += " ORDER BY ORDINAL_POSITION";
    mysql::MysqlRows r = co_await c.query(sql);
    for (const auto& row : r.rows) table_columns_.push_back({row[0].value_or(""), row[1].value_or("")});
    table_exists_ = !r.rows.empty();
    if (!table_exists_ && !cfg_.create)
      throw MysqlError("table " + target_ + " does not exist (create: false)", MysqlError::Kind::query, 1146);
    for (const auto& k : cfg_.key) {
      if (!table_exists_ || std::any_of(table_columns_.begin(), table_columns_.end(),
                                        [&](const TableColumn& col) { return col.name == k; }))
        continue;
      throw MysqlError("key column '" + k + "' is not in table " + target_, MysqlError::Kind::query, 1054);
    }
  }

  bool is_key(const std::string& name) const {
    return std::find(cfg_.key.begin(), cfg_.key.end(), name) != cfg_.key.end();
  }

  /// Without `columns:`, the first record's fields that the table has (all of
  /// them for a table still to create, typed by their JSON values).
  asio::awaitable<void> columns_from(const std::string& record) {
    std::vector<TableColumn> cols;
    for_each_member(record, 0, [&](const JsonMember& m) {
      std::string name = json_unescape(m.raw_key);
      std::string_view v = std::string_view(record).substr(m.value_begin, m.value_end - m.value_begin);
      std::string type = is_key(name) ? "VARCHAR(255)" : "TEXT";  // a TEXT column cannot be a key
      char c = v.empty() ? 'n' : v.front();
      if (c == '{' || c == '[') type = "JSON";
      else if (c == 't' || c == 'f') type = "BOOLEAN";
      else if (c == '-' || (c >= '0' && c <= '9'))
        type = v.find_first_of(".eE") == std::string_view::npos ? "BIGINT" : "DOUBLE";
      if (table_exists_ && std::none_of(table_columns_.begin(), table_columns_.end(),
                                        [&](const TableColumn& col) { return col.name == name; }))
        return;
      cols.push_back({name, type});
    });
    if (cols.empty()) throw SinkError("the first record has no fields that are columns of " + target_, false);
    columns_ = cols;
    compile_columns();
    co_return;
  }

  class RowStep final : public RecordStep {
   public:
    explicit RowStep(const MysqlSink& sink) : sink_(sink) {
      for (size_t i = 0; i < step_lanes(); ++i)
        evals_.push_back(std::make_unique<expr::Evaluator>(*sink.program_, /*exact_numbers=*/true));
    }
    Verdict apply(size_t lane, StepRecord& rec, std::string& error) override {
      expr::Evaluator& eval = *evals_[lane];
      if (!rec.rows || !bind_step_record(eval, rec, error)) return Verdict::keep;  // make_rows says why
      size_t at = rec.rows->size();
      if (at > UINT32_MAX - (1u << 24)) return Verdict::keep;  // past what a slice reaches: make_rows encodes it
      sink_.encoder_.append_line(eval, *rec.rows);
      rec.row_at = static_cast<uint32_t>(at);
      rec.row_size = static_cast<uint32_t>(rec.rows->size() - at);
      return Verdict::keep;
    }

   private:
    const MysqlSink& sink_;
    std::vector<std::unique_ptr<expr::Evaluator>> evals_;  // one per lane
  };

  void compile_columns() {
    program_ = std::make_unique<expr::Program>();
    for (const auto& c : columns_) program_->add(expr::field_expression(c.name));
    prep_eval_ = std::make_unique<expr::Evaluator>(*program_, /*exact_numbers=*/true);
    write_eval_ = std::make_unique<expr::Evaluator>(*program_, /*exact_numbers=*/true);
    column_list_.clear();
    for (const auto& c : columns_) column_list_ += (column_list_.empty() ? "" : ", ") + mysql::quote_ident(c.name);
    std::string updates;
    for (const auto& c : columns_) {
      if (is_key(c.name)) continue;
      std::string q = mysql::quote_ident(c.name);
      updates += (updates.empty() ? "" : ", ") + q + " = VALUES(" + q + ")";  // MariaDB has no `AS new` alias
    }
    insert_head_ = "INSERT INTO " + target_ + " (" + column_list_ + ") VALUES ";
    insert_tail_.clear();
    if (!cfg_.key.empty()) {
      // With nothing to update, a key seen before leaves its row as it is.
      std::string k = mysql::quote_ident(cfg_.key.front());
      insert_tail_ = " ON DUPLICATE KEY UPDATE " + (updates.empty() ? k + " = " + k : updates);
    }
    encoder_.set_columns(columns_, table_columns_);
  }

  asio::awaitable<void> create_table(MysqlConnection& c) {
    std::string sql = "CREATE TABLE IF NOT EXISTS " + target_ + " (";
    for (size_t i = 0; i < columns_.size(); ++i)
      sql += (i ? ", " : "") + mysql::quote_ident(columns_[i].name) + " " +
             (columns_[i].type.empty() ? (is_key(columns_[i].name) ? "VARCHAR(255)" : "TEXT") : columns_[i].type);
    if (!cfg_.key.empty()) {
      sql += ", PRIMARY KEY (";
      for (size_t i = 0; i < cfg_.key.size(); ++i) sql += (i ? ", " : "") + mysql::quote_ident(cfg_.key[i]);
      sql += ")";
    }
    sql += ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
    co_await c.exec(sql);
    table_exists_ = true;
  }

  bool use_load() const { return cfg_.load_data && !load_refused_; }

  /// One transaction: the rows (bad ones split off), the checkpoint if exactly
  /// once, commit.
  template <class AsInserts>
  asio::awaitable<void> write_batch(MysqlConnection& c, std::shared_ptr<InsertRows> rows, WriteContext& wc,
                                    AsInserts as_inserts) {
    if (!table_exists_) co_await create_table(c);
    if (rows->load && !cfg_.key.empty() && !c.has("aetl_staging")) co_await make_staging(c);
    if (!wc.delivery_ids.empty()) {
      co_await write_batch_by_delivery(c, rows, wc, as_inserts);
      co_return;
    }
    co_await c.exec("START TRANSACTION");
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
    Rejected rejected;
    auto lock_again = [&]() -> asio::awaitable<void> {
      if (cfg_.exactly_once) co_await checkpoints_.lock(c);
    };
    co_await write_rows_of_batch(c, rows, nullptr, rejected, lock_again, as_inserts);
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

  /// In the open transaction: the rows by LOAD DATA; if it did not take them as
  /// they are, again (after ROLLBACK, START TRANSACTION and `again_begun`) as
  /// INSERT statements (without the records `skip` marks), bad rows split off.
  /// `rejected` gets the unreadable records and the refused rows' records, sorted.
  template <class AgainBegun, class AsInserts>
  asio::awaitable<void> write_rows_of_batch(MysqlConnection& c, std::shared_ptr<InsertRows> rows,
                                            const std::vector<bool>* skip, Rejected& rejected, AgainBegun again_begun,
                                            AsInserts as_inserts) {
    if (rows->load && !co_await load(c, *rows)) {
      // A value LOAD DATA changed or a row it skipped: the batch again, judged strictly.
      co_await c.exec("ROLLBACK");
      co_await c.exec("START TRANSACTION");
      co_await again_begun();
      rows = co_await as_inserts();
      if (skip) rows = without(rows, *skip);
    }
    rejected = rows->unreadable;
    size_t budget = std::min(kStatementBytes, c.max_packet() > 4096 ? c.max_packet() - 4096 : c.max_packet());
    // Statements as long as the budget allows, in order.
    size_t from = 0;
    while (!rows->load && from < rows->row.size()) {
      size_t bytes = insert_head_.size() + insert_tail_.size();
      size_t to = from;
      while (to < rows->row.size() && (to == from || bytes + rows->row[to].size() + 1 <= budget))
        bytes += rows->row[to++].size() + 1;
      co_await insert(c, *rows, from, to, budget, rejected);
      from = to;
    }
    std::sort(rejected.begin(), rejected.end());
  }

  /// Exactly once with a queue source: the rows of records no earlier delivery
  /// committed, then the IDs of those written, last before COMMIT. If one was
  /// kept meanwhile by another worker's commit, the batch is rolled back and
  /// made again without it (as the postgres sink does; sinks/sql/delivery_ids.h).
  template <class AsInserts>
  asio::awaitable<void> write_batch_by_delivery(MysqlConnection& c, std::shared_ptr<InsertRows> all_rows,
                                                WriteContext& wc, AsInserts as_inserts) {
    if (!c.has("aetl_idle_timeout")) {
      // A batch's statements follow one another with no wait between them, so a
      // live worker is never idle in its transaction for long.
      co_await c.exec("SET SESSION idle_transaction_timeout = 15");
      c.made("aetl_idle_timeout");
    }
    for (int attempt = 1;; ++attempt) {
      co_await c.exec("START TRANSACTION");
      bool forgot = co_await deliveries_.forget_older_than(c, cfg_.remember_deliveries);
      const bool looked = !wc.first_deliveries || wc.attempt > 1 || attempt > 1;
      std::vector<bool> kept(wc.delivery_ids.size());
      if (looked) kept = co_await deliveries_.find(c, wc.delivery_ids);
      skip_repeated_ids(wc.delivery_ids, kept);
      Rejected rejected;
      auto forget_again = [&]() -> asio::awaitable<void> {  // the ROLLBACK undid it
        forgot = co_await deliveries_.forget_older_than(c, cfg_.remember_deliveries);
      };
      co_await write_rows_of_batch(c, without(all_rows, kept), &kept, rejected, forget_again, as_inserts);
      if (!looked && !rejected.empty()) {
        // A refused row may be one an earlier delivery committed (the table has a
        // unique key; the group was set back): made again, looked up.
        co_await c.exec("ROLLBACK");
        continue;
      }
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

  /// The rows by LOAD DATA LOCAL INFILE (into the staging table first with
  /// `key`). False, with the rows maybe written, when the server changed a value
  /// (a warning), left a row out, refused a row or refuses LOCAL: the caller rolls back.
  asio::awaitable<bool> load(MysqlConnection& c, const InsertRows& rows) {
    if (rows.row.empty()) co_return true;
    std::vector<std::string_view> pieces = rows.pieces();
    std::string into = cfg_.key.empty() ? target_ : staging_;
    std::string sql = "LOAD DATA LOCAL INFILE 'aetl-batch' INTO TABLE " + into + " CHARACTER SET utf8mb4 (" +
                      column_list_ + ")";
    try {
      std::string clear = "DELETE FROM " + staging_;
      if (!cfg_.key.empty()) co_await c.exec(clear);
      uint64_t n = co_await c.load_data(sql, pieces);
      if (n != rows.row.size() || c.warnings() > 0) co_return false;
      if (!cfg_.key.empty()) {
        std::string upsert = "INSERT INTO " + target_ + " (" + column_list_ + ") SELECT " + column_list_ +
                             " FROM " + staging_ + " ORDER BY aetl_seq" + insert_tail_;
        co_await c.exec(upsert);
        if (c.warnings() > 0) co_return false;
      }
    } catch (const MysqlError& e) {
      if (e.code == 1148 || e.code == 3948 || e.code == 4166 || e.code == 2068) {  // LOCAL is not allowed
        if (!load_refused_)  // a batch prepared meanwhile may find out too
          spdlog::warn("mysql {}: the server refuses LOAD DATA LOCAL ({}): sending INSERT statements instead",
                       cfg_.table, e.what());
        load_refused_ = true;
        co_return false;
      }
      if (!e.bad_row()) throw;
      co_return false;
    }
    co_return true;
  }

  /// Per connection (temporary): the target's columns without its keys, and
  /// aetl_seq, so the last record of a key in a batch wins.
  asio::awaitable<void> make_staging(MysqlConnection& c) {
    std::string sql = "CREATE TEMPORARY TABLE IF NOT EXISTS " + staging_ + " ENGINE=InnoDB AS SELECT " + column_list_ +
                      " FROM " + target_ + " LIMIT 0";
    co_await c.exec(sql);
    std::string seq = "ALTER TABLE " + staging_ + " ADD COLUMN aetl_seq BIGINT AUTO_INCREMENT PRIMARY KEY";
    co_await c.exec(seq);
    c.made("aetl_staging");
  }

  /// Rows [from, to) as one statement; refused for a bad row, it is split in
  /// halves (the server undid only that statement).
  asio::awaitable<void> insert(MysqlConnection& c, const InsertRows& rows, size_t from, size_t to, size_t budget,
                               Rejected& rejected) {
    if (from == to) co_return;
    std::string sql = insert_head_;
    for (size_t i = from; i < to; ++i) {
      if (i > from) sql += ',';
      sql += rows.row[i];
    }
    sql += insert_tail_;
    if (sql.size() > budget && to - from == 1) {
      // The server would drop the connection: refused here, with the reason.
      rejected.emplace_back(rows.record[from], "the row is " + std::to_string(sql.size()) +
                                                   " bytes as a statement, more than the server's "
                                                   "max_allowed_packet allows (" +
                                                   std::to_string(c.max_packet()) + ")");
      co_return;
    }
    std::optional<MysqlError> bad;
    try {
      co_await c.exec(sql);
    } catch (const MysqlError& e) {
      if (!e.bad_row()) throw;
      bad = e;
    }
    if (!bad) co_return;
    if (to - from == 1) {
      rejected.emplace_back(rows.record[from], bad->what());
      co_return;
    }
    size_t mid = from + (to - from) / 2;
    co_await insert(c, rows, from, mid, budget, rejected);
    co_await insert(c, rows, mid, to, budget, rejected);
  }

  RunContext& run_;
  MysqlSinkConfig cfg_;
  std::string target_;  // quoted, maybe database-qualified
  std::string staging_;  // with key: and LOAD DATA, the temporary table beside it
  MysqlCheckpointTable checkpoints_;
  MysqlDeliveryTable deliveries_;  // exactly once with a queue source: aetl_deliveries beside it
  std::unique_ptr<MysqlPool> pool_;
  std::vector<TableColumn> columns_;
  std::vector<TableColumn> table_columns_;
  bool table_exists_ = false;
  std::string column_list_;
  std::string insert_head_;  // INSERT INTO t (a, b) VALUES
  std::string insert_tail_;  // ON DUPLICATE KEY UPDATE ..., with key:
  InsertEncoder encoder_;
  std::unique_ptr<expr::Program> program_;
  std::unique_ptr<expr::Evaluator> prep_eval_;   // one prepare at a time
  std::unique_ptr<expr::Evaluator> write_eval_;  // a batch that came unprepared (the first)
  bool load_refused_ = false;  // the server refuses LOAD DATA LOCAL: INSERT statements only
  std::string last_token_;  // exactly once: the batch whose COMMIT is not known to have landed
  Rejected last_rejected_;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"url", FieldType::string, "",
     "mysql://user:password@host:port/database (mariadb:// too); left-out parts from MYSQL_HOST, MYSQL_TCP_PORT, "
     "MYSQL_PWD and the login name",
     "\"mysql://etl:${MYSQL_PWD}@db:3306/shop\""},
    {"table", FieldType::string, "required", "the table: name or database.name", "shop.events"},
    {"columns", FieldType::columns, "",
     "{name: TYPE} or a list of names (default: the first record's fields, typed from their values)",
     "{id: bigint, payload: json}"},
    {"key", FieldType::list, "",
     "primary key or unique columns: rows are upserted (ON DUPLICATE KEY UPDATE), so replays are idempotent", "[id]"},
    {"exactly_once", FieldType::boolean, "false", "store the checkpoint in the same transaction as each batch",
     "true"},
    kRememberDeliveriesField,
    {"create", FieldType::boolean, "true", "create a missing table (false: a missing table is an error)", "false"},
    {"load_data", FieldType::boolean, "true",
     "send batches with LOAD DATA LOCAL INFILE from memory (false: multi-row INSERT statements only)", "false"},
    {"connect_timeout", FieldType::duration, "10s", "how long connecting may take", "5s"},
    {"pool.min", FieldType::integer, "1", "connections opened before the run starts", "2"},
    {"pool.max", FieldType::integer, "2", "connections at most", "4"},
};
const std::string_view kExamples[] = {
    "{url: \"mysql://etl:${MYSQL_PWD}@localhost:3306/shop\", table: events, columns: {id: bigint, payload: json}, "
    "key: [id], exactly_once: true, remember_deliveries: 30d, create: false, load_data: false, connect_timeout: 5s, pool: {min: 1, max: 4}}",
    "{table: shop.events, columns: [id, payload]}",
};
const FieldDefault kCommonDefaults[] = {
    {"batch.size", "20000"}, {"batch.linger", "500ms"}, {"retry.max", "10"}, {"retry.backoff", "200ms..5s"}};
}  // namespace
extern const KindFields mysql_sink_fields{kFields, kExamples, kCommonDefaults};

SinkBuilder parse_mysql_sink(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common) {
  auto cfg = std::make_shared<MysqlSinkConfig>();
  common.batching.size = 20000;
  common.batching.linger = std::chrono::milliseconds(500);
  // Enough retries to ride out a server restart (about 15 s of backoff in all).
  common.retry = RetryPolicy{10, std::chrono::milliseconds(200), std::chrono::milliseconds(5000)};
  size_t before = problems.size();
  ConfigReader r(node, problems, {kFields, sink_common_fields()});
  if (!r.ok()) return {};
  std::string url;
  std::optional<ConfigLocation> url_at;
  if (auto u = r.string("url")) url = u->text, url_at = u->where;
  std::string error;
  if (auto parsed = mysql::parse_mysql_url(url, error)) cfg->where = *parsed;
  else problems.add(url_at ? *url_at : r.where(), "url: " + error);
  if (auto t = r.string("table", true)) {
    std::string name = t->text;
    if (auto dot = name.find('.'); dot != std::string::npos) {
      cfg->database = name.substr(0, dot);
      name = name.substr(dot + 1);
    }
    if (name.empty() || (t->text.find('.') != std::string::npos && cfg->database.empty()))
      problems.add(t->where, "table: an empty name");
    cfg->table = name;
  }
  read_columns_and_key(r, problems, is_sqlite_type, "bigint, text, varchar(20), decimal(10,2), json, datetime(6)",
                       cfg->columns, cfg->key);
  if (auto e = r.boolean("exactly_once")) cfg->exactly_once = common.exactly_once = *e;
  if (auto d = r.duration("remember_deliveries")) cfg->remember_deliveries = std::max(*d, std::chrono::milliseconds(1000));
  if (auto e = r.boolean("create")) cfg->create = *e;
  if (auto e = r.boolean("load_data")) cfg->load_data = *e;
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
    return std::make_unique<MysqlSink>(run, *cfg, id);
  };
}

}  // namespace aetl
