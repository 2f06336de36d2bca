// The `sqlite` sink: batched transactions into an SQLite table (WAL).
//   sink:
//     sqlite:
//       path: out/errors.db
//       table: errors
//       columns: {id: INTEGER, url: TEXT, status: INTEGER}   # or a list, or left out
//       key: [id]                 # upsert: replays are idempotent
//       exactly_once: true        # the checkpoint commits with each batch
//                                 # (with a queue source: the entries' IDs, sinks/sql/delivery_ids.h)
//       batch: {size: 5000, linger: 200ms}
// Each column takes the record's top-level field of the same name. Without
// `columns`, the first record's fields give the columns and their types.
// All SQLite work runs on the blocking pool, one batch at a time.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <set>

#include "engine/setup_error.h"
#include "engine/sqlite_wal.h"
#include "engine/blocking_pool.h"
#include "run/checkpoint.h"
#include "expr/expression.h"
#include "engine/json_scan.h"
#include "config/kinds.h"
#include "net/sql_table.h"
#include "run/record_step.h"
#include "sinks/sql/delivery_ids.h"
#include "sinks/sql/sql_columns.h"
#include "sinks/sqlite/sqlite_row.h"

namespace aetl {
namespace {

using Column = TableColumn;

struct SqliteConfig {
  std::string path;
  std::string table;
  std::vector<Column> columns;  // empty: from the first record
  std::vector<std::string> key;
  bool exactly_once = false;
  std::chrono::milliseconds remember_deliveries{kRememberDeliveriesDefault};
  std::string synchronous = "FULL";
};




bool transient_code(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL || primary == SQLITE_IOERR;
}

/// The rows of a batch's records that came without one (made on the pool while
/// the previous batch commits), in sqlite_row's encoding.
struct PreparedRows {
  std::string data;
  std::vector<size_t> start;         // per record: its row's offset in data, or kNone
  std::vector<std::string> errors;   // per record: why it could not be read
  static constexpr size_t kNone = static_cast<size_t>(-1);
};

class SqliteSink final : public PipelineSink {
 public:
  SqliteSink(RunContext& run, const SqliteConfig& cfg, const SinkIdentity& id)
      : run_(run), cfg_(cfg), checkpoint_name_(id.checkpoint_name) {}
  ~SqliteSink() override {
    sqlite3_finalize(insert_);
    sqlite3_finalize(insert_checkpoint_);
    sqlite3_finalize(update_checkpoint_);
    sqlite3_finalize(insert_delivery_);
    sqlite3_finalize(delete_delivery_);
    sqlite3_close(db_);
  }

  bool exactly_once() const override { return cfg_.exactly_once; }
  std::string describe() const override { return "sqlite " + cfg_.path; }

  /// Rows are made on the step lanes once the columns are known (declared, or
  /// settled by the first write); records that pass before that get theirs in prepare().
  std::shared_ptr<RecordStep> row_step() override { return std::make_shared<RowStep>(*this); }

  std::optional<std::string> stored_checkpoint() override {
    if (!std::filesystem::exists(cfg_.path)) return std::nullopt;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(cfg_.path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : "cannot open";
      sqlite3_close(db);
      throw SetupError(cfg_.path + ": " + msg);
    }
    // A table from before generations were kept reads as generation 0, the
    // column's default once open() adds it.
    std::optional<std::string> out;
    sqlite3_stmt* st = nullptr;
    bool has_generation = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('aetl_checkpoints') WHERE name = 'generation'", -1,
                           &st, nullptr) == SQLITE_OK)
      has_generation = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    st = nullptr;
    std::string sql = std::string("SELECT checkpoint, ") + (has_generation ? "generation" : "0") +
                      " FROM aetl_checkpoints WHERE pipeline = ?";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, checkpoint_name_.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) {
        out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        generation_ = sqlite3_column_int64(st, 1);
      }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  asio::awaitable<void> open(const Checkpoint*, const std::string&) override {
    auto job = [this]() -> std::string {
      try {
        open_db();
        return {};
      } catch (const std::exception& e) {
        return e.what();
      }
    };
    std::string err = co_await run_blocking(run_.stage.pool.pool(), job);
    if (!err.empty()) throw SetupError(cfg_.path + ": " + err);
  }

  asio::awaitable<bool> write(const Batch& batch, WriteContext& wc) override {
    auto job = [this, &batch, &wc]() -> std::pair<int, std::string> {
      try {
        write_batch(batch, wc);
        return {0, {}};
      } catch (const SinkError& e) {
        return {e.transient ? 1 : 2, e.what()};
      }
    };
    auto [kind, message] = co_await run_blocking(run_.stage.pool.pool(), job);
    if (kind) throw SinkError(cfg_.path + ": " + message, kind == 1);
    co_return true;
  }

  asio::awaitable<void> close() override { co_return; }

  asio::awaitable<std::shared_ptr<void>> prepare(const Batch& batch) override {
    // Only once the columns are known (the first write settles them).
    if (!columns_ready_.load(std::memory_order_acquire)) co_return nullptr;
    if (std::all_of(batch.begin(), batch.end(), [](const Record& r) { return !r.row.empty(); })) co_return nullptr;
    const Batch* b = &batch;
    auto job = [this, b]() -> std::shared_ptr<void> { return prepare_rows(*b); };
    co_return co_await run_blocking(run_.stage.pool.pool(), job);
  }

  asio::awaitable<void> store_checkpoint(std::string json) override {
    if (!db_ || !cfg_.exactly_once) co_return;
    auto job = [this, json = std::move(json)]() -> std::string {
      try {
        exec("BEGIN IMMEDIATE");
        try {
          save_checkpoint(json);
          exec("COMMIT");
          generation_ = next_generation_;
        } catch (...) {
          sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
          throw;
        }
        return {};
      } catch (const CheckpointTakenOver&) {
        throw;
      } catch (const std::exception& e) {
        return e.what();
      }
    };
    std::string err = co_await run_blocking(run_.stage.pool.pool(), job);
    if (!err.empty()) throw SinkError(cfg_.path + ": cannot store the checkpoint: " + err, false);
  }

 private:
  void exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw SinkError(msg, transient_code(rc));
    }
  }

  void open_db() {
    std::error_code ec;
    auto dir = std::filesystem::path(cfg_.path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (sqlite3_open_v2(cfg_.path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      throw std::runtime_error(db_ ? sqlite3_errmsg(db_) : "cannot open");
    sqlite3_busy_timeout(db_, 5000);
    set_wal_mode(db_, std::chrono::milliseconds(5000));  // a failure shows in the next statement
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=" + cfg_.synchronous);
    if (by_delivery()) ensure_delivery_table();
    else if (cfg_.exactly_once) ensure_checkpoint_table();
    if (!cfg_.columns.empty()) prepare(cfg_.columns);
  }

  std::vector<Column> existing_columns() {
    std::vector<Column> cols;
    sqlite3_stmt* st = nullptr;
    std::string sql = "SELECT name, type FROM pragma_table_info(?)";
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return cols;
    sqlite3_bind_text(st, 1, cfg_.table.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW)
      cols.push_back({reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                      reinterpret_cast<const char*>(sqlite3_column_text(st, 1))});
    sqlite3_finalize(st);
    return cols;
  }

  /// Creates the table if needed and prepares the INSERT (or upsert).
  void prepare(const std::vector<Column>& columns) {
    auto have = existing_columns();
    if (have.empty()) {
      std::string sql = "CREATE TABLE IF NOT EXISTS " + quote_sql_ident(cfg_.table) + " (";
      for (size_t i = 0; i < columns.size(); ++i) {
        if (i) sql += ", ";
        sql += quote_sql_ident(columns[i].name);
        if (!columns[i].type.empty()) sql += " " + columns[i].type;
      }
      if (!cfg_.key.empty()) {
        sql += ", PRIMARY KEY (";
        for (size_t i = 0; i < cfg_.key.size(); ++i) sql += (i ? ", " : "") + quote_sql_ident(cfg_.key[i]);
        sql += ")";
      }
      sql += ")";
      exec(sql);
    } else {
      std::set<std::string> names;
      for (const auto& c : have) names.insert(c.name);
      for (const auto& c : columns)
        if (!names.count(c.name))
          throw std::runtime_error("table " + quote_sql_ident(cfg_.table) + " has no column " + quote_sql_ident(c.name));
    }
    columns_ = columns;
    std::string sql = "INSERT INTO " + quote_sql_ident(cfg_.table) + " (";
    std::string values;
    for (size_t i = 0; i < columns.size(); ++i) {
      sql += (i ? ", " : "") + quote_sql_ident(columns[i].name);
      values += i ? ", ?" : "?";
    }
    sql += ") VALUES (" + values + ")";
    if (!cfg_.key.empty()) {
      sql += " ON CONFLICT (";
      for (size_t i = 0; i < cfg_.key.size(); ++i) sql += (i ? ", " : "") + quote_sql_ident(cfg_.key[i]);
      sql += ") DO ";
      std::string updates;
      for (const auto& c : columns) {
        if (std::find(cfg_.key.begin(), cfg_.key.end(), c.name) != cfg_.key.end()) continue;
        updates += (updates.empty() ? "" : ", ") + quote_sql_ident(c.name) + " = excluded." + quote_sql_ident(c.name);
      }
      sql += updates.empty() ? "NOTHING" : "UPDATE SET " + updates;
    }
    sqlite3_finalize(insert_);
    insert_ = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &insert_, nullptr) != SQLITE_OK) {
      std::string msg = sqlite3_errmsg(db_);
      if (msg.find("ON CONFLICT clause does not match") != std::string::npos)
        msg = "key: table " + quote_sql_ident(cfg_.table) + " has no PRIMARY KEY or UNIQUE index on those columns";
      throw std::runtime_error(msg);
    }
    program_ = std::make_unique<expr::Program>();
    for (const auto& c : columns) program_->add(expr::field_expression(c.name));
    eval_ = std::make_unique<expr::Evaluator>(*program_);
    columns_ready_.store(true, std::memory_order_release);
  }

  /// Columns and types from the first record: integer, real, text (objects and arrays as JSON).
  std::vector<Column> infer_columns(const std::string& record) {
    std::vector<Column> cols;
    for_each_member(record, 0, [&](const JsonMember& m) {
      std::string_view v = std::string_view(record).substr(m.value_begin, m.value_end - m.value_begin);
      std::string type = "TEXT";
      if (!v.empty() && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')))
        type = v.find_first_of(".eE") == std::string_view::npos ? "INTEGER" : "REAL";
      else if (v == "true" || v == "false") type = "INTEGER";
      else if (v == "null") type = "";
      cols.push_back({json_unescape(m.raw_key), type});
    });
    if (auto clash = sqlite_name_clash(cols))
      throw SetupError(describe() + ": the first record's keys '" + clash->first + "' and '" + clash->second +
                       "' would be one column (SQLite column names ignore case); rename one with select:, or list "
                       "columns:");
    return cols;
  }

  std::shared_ptr<PreparedRows> prepare_rows(const Batch& batch) {
    if (!prep_eval_) prep_eval_ = std::make_unique<expr::Evaluator>(*program_);  // program_ is fixed by now
    auto rows = std::make_shared<PreparedRows>();
    rows->start.assign(batch.size(), PreparedRows::kNone);
    rows->errors.resize(batch.size());
    std::string error;
    for (size_t k = 0; k < batch.size(); ++k) {
      if (!batch[k].row.empty()) continue;
      if (!prep_eval_->bind(batch[k].data, error)) {
        rows->errors[k] = error;
        continue;
      }
      size_t at = rows->data.size();
      if (append_sqlite_row(*prep_eval_, columns_.size(), rows->data)) rows->start[k] = at;
      else rows->errors[k] = "a text longer than 2 GiB";
    }
    return rows;
  }

  void write_batch(const Batch& batch, WriteContext& wc) {
    if (!insert_) {
      if (columns_.empty()) {
        auto cols = infer_columns(batch.front().data);
        if (cols.empty()) throw SinkError("the first record has no fields to make columns of", false);
        try {
          prepare(cols);
        } catch (const SinkError&) {
          throw;
        } catch (const std::exception& e) {
          throw SinkError(e.what(), false);
        }
      }
    }
    exec("BEGIN IMMEDIATE");
    try {
      const bool ids = !wc.delivery_ids.empty();
      const bool forgot = ids && forget_old_deliveries();
      std::string error;
      std::string scratch;
      auto* rows = static_cast<const PreparedRows*>(wc.prepared.get());
      size_t columns = columns_.size();
      for (size_t k = 0; k < batch.size(); ++k) {
        const Record& r = batch[k];
        const bool keep_id = ids && !wc.delivery_ids[k].empty();
        if (keep_id && !remember_delivery(wc.delivery_ids[k])) {
          wc.redelivered.push_back(k);
          continue;
        }
        size_t refused = wc.rejected.size();
        // A refused record's ID is not kept: a later delivery of it is judged again.
        auto forget_if_refused = [&] {
          if (keep_id && wc.rejected.size() != refused) forget_delivery(wc.delivery_ids[k]);
        };
        if (!r.row.empty()) {
          bind_sqlite_row(insert_, r.row.view(), columns);
        } else if (rows) {
          if (rows->start[k] == PreparedRows::kNone) {
            wc.rejected.emplace_back(k, rows->errors[k]);
            forget_if_refused();
            continue;
          }
          bind_sqlite_row(insert_, std::string_view(rows->data).substr(rows->start[k]), columns);
        } else {
          scratch.clear();
          error.clear();
          if (!eval_->bind(r.data, error) || !append_sqlite_row(*eval_, columns, scratch)) {
            wc.rejected.emplace_back(k, error.empty() ? "a text longer than 2 GiB" : error);
            forget_if_refused();
            continue;
          }
          bind_sqlite_row(insert_, scratch, columns);
        }
        int rc = sqlite3_step(insert_);
        sqlite3_reset(insert_);
        if (rc == SQLITE_DONE) continue;
        int primary = rc & 0xff;
        if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG) {
          wc.rejected.emplace_back(k, sqlite3_errmsg(db_));
          forget_if_refused();
          continue;
        }
        throw SinkError(sqlite3_errmsg(db_), transient_code(rc));
      }
      if (cfg_.exactly_once && wc.checkpoint_after) save_checkpoint(wc.checkpoint_after(wc.rejected));
      exec("COMMIT");
      if (forgot) last_forget_ = std::chrono::steady_clock::now();
      if (cfg_.exactly_once && wc.checkpoint_after) generation_ = next_generation_;
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      wc.rejected.clear();
      wc.redelivered.clear();
      throw;
    }
  }

  /// Exactly once with a queue source: delivery IDs instead of a checkpoint.
  bool by_delivery() const { return cfg_.exactly_once && run_.queue_source; }

  void ensure_delivery_table() {
    exec("CREATE TABLE IF NOT EXISTS " + std::string(kDeliveryTable) +
         " (pipeline TEXT NOT NULL, id TEXT NOT NULL, committed_at INTEGER NOT NULL,"
         " PRIMARY KEY (pipeline, id)) WITHOUT ROWID");
  }

  sqlite3_stmt* statement(sqlite3_stmt*& st, const std::string& sql) {
    if (!st && sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw SinkError(sqlite3_errmsg(db_), false);
    return st;
  }

  /// In the open transaction: keeps `id`; false if it was kept already.
  bool remember_delivery(const std::string& id) {
    sqlite3_stmt* st = statement(insert_delivery_, "INSERT OR IGNORE INTO " + std::string(kDeliveryTable) +
                                                       " (pipeline, id, committed_at) VALUES (?1, ?2, unixepoch())");
    sqlite3_bind_text(st, 1, checkpoint_name_.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) throw SinkError(sqlite3_errmsg(db_), transient_code(rc));
    return sqlite3_changes(db_) == 1;
  }

  void forget_delivery(const std::string& id) {
    sqlite3_stmt* st =
        statement(delete_delivery_, "DELETE FROM " + std::string(kDeliveryTable) + " WHERE pipeline = ?1 AND id = ?2");
    sqlite3_bind_text(st, 1, checkpoint_name_.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) throw SinkError(sqlite3_errmsg(db_), transient_code(rc));
  }

  /// In the open transaction, at most once per kForgetEvery (counted from its
  /// commit): drops IDs older than remember_deliveries. True if it did.
  bool forget_old_deliveries() {
    auto now = std::chrono::steady_clock::now();
    if (last_forget_ && now - *last_forget_ < kForgetEvery) return false;
    auto keep = std::chrono::duration_cast<std::chrono::seconds>(cfg_.remember_deliveries).count();
    sqlite3_stmt* st = nullptr;
    std::string sql = "DELETE FROM " + std::string(kDeliveryTable) + " WHERE pipeline = ?1 AND committed_at < unixepoch() - ?2";
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) throw SinkError(sqlite3_errmsg(db_), false);
    sqlite3_bind_text(st, 1, checkpoint_name_.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, keep);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw SinkError(sqlite3_errmsg(db_), transient_code(rc));
    return true;
  }

  /// The checkpoint table, with the generation column every commit compares and
  /// bumps (added to a table made by an older version).
  void ensure_checkpoint_table() {
    exec("BEGIN IMMEDIATE");
    try {
      exec("CREATE TABLE IF NOT EXISTS aetl_checkpoints (pipeline TEXT PRIMARY KEY, checkpoint TEXT NOT NULL,"
           " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
           " generation INTEGER NOT NULL DEFAULT 0)");
      bool has_generation = false;
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db_, "SELECT 1 FROM pragma_table_info('aetl_checkpoints') WHERE name = 'generation'",
                             -1, &st, nullptr) == SQLITE_OK)
        has_generation = sqlite3_step(st) == SQLITE_ROW;
      sqlite3_finalize(st);
      if (!has_generation) exec("ALTER TABLE aetl_checkpoints ADD COLUMN generation INTEGER NOT NULL DEFAULT 0");
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  /// Compare-and-set inside the open transaction: the row must still be the one
  /// this run read (or none) or last wrote; else another run took over.
  void save_checkpoint(const std::string& json) {
    sqlite3_stmt*& st = generation_ ? update_checkpoint_ : insert_checkpoint_;
    if (!st) {
      const char* sql = generation_
                            ? "UPDATE aetl_checkpoints SET checkpoint = ?2, generation = generation + 1,"
                              " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE pipeline = ?1 AND generation = ?3"
                            : "INSERT INTO aetl_checkpoints(pipeline, checkpoint, generation) VALUES(?1, ?2, 1)"
                              " ON CONFLICT(pipeline) DO NOTHING";
      if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) throw SinkError(sqlite3_errmsg(db_), false);
    }
    sqlite3_bind_text(st, 1, checkpoint_name_.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, json.data(), static_cast<int>(json.size()), SQLITE_TRANSIENT);
    if (generation_) sqlite3_bind_int64(st, 3, *generation_);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) throw SinkError(sqlite3_errmsg(db_), transient_code(rc));
    if (sqlite3_changes(db_) != 1) throw CheckpointTakenOver(taken_over_message(describe(), run_.pipeline_name));
    next_generation_ = generation_ ? *generation_ + 1 : 1;
  }

  /// Encodes records into rows on the record-step lanes, as they come out of the
  /// steps in front of the sink (reading the values a select left, so the record
  /// is not parsed again). A record it cannot read is left to prepare() and write().
  class RowStep final : public RecordStep {
   public:
    explicit RowStep(const SqliteSink& sink) : sink_(sink), evals_(step_lanes()) {}
    Verdict apply(size_t lane, StepRecord& rec, std::string& error) override {
      if (!rec.rows || !sink_.columns_ready_.load(std::memory_order_acquire)) return Verdict::keep;
      auto& eval = evals_[lane];
      if (!eval) eval = std::make_unique<expr::Evaluator>(*sink_.program_);  // fixed once ready
      if (!bind_step_record(*eval, rec, error)) return Verdict::keep;
      size_t at = rec.rows->size();
      if (at > UINT32_MAX - (1u << 24)) return Verdict::keep;  // past what a slice reaches
      if (!append_sqlite_row(*eval, sink_.columns_.size(), *rec.rows)) return Verdict::keep;
      if (rec.rows->size() - at > UINT32_MAX) {
        rec.rows->resize(at);
        return Verdict::keep;
      }
      rec.row_at = static_cast<uint32_t>(at);
      rec.row_size = static_cast<uint32_t>(rec.rows->size() - at);
      return Verdict::keep;
    }

   private:
    const SqliteSink& sink_;
    std::vector<std::unique_ptr<expr::Evaluator>> evals_;  // one per lane, made on its lane
  };

  RunContext& run_;
  SqliteConfig cfg_;
  std::string checkpoint_name_;  // keys its checkpoint and delivery IDs (SinkIdentity)
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* insert_checkpoint_ = nullptr;
  sqlite3_stmt* update_checkpoint_ = nullptr;
  sqlite3_stmt* insert_delivery_ = nullptr;
  sqlite3_stmt* delete_delivery_ = nullptr;
  std::optional<std::chrono::steady_clock::time_point> last_forget_;
  std::optional<int64_t> generation_;  // exactly once: the stored row's, as read or last written
  int64_t next_generation_ = 0;        // what the open transaction makes it
  std::vector<Column> columns_;
  std::unique_ptr<expr::Program> program_;
  std::unique_ptr<expr::Evaluator> eval_;
  std::unique_ptr<expr::Evaluator> prep_eval_;  // used by prepare_rows, on another thread than eval_
  std::atomic<bool> columns_ready_{false};
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"path", FieldType::string, "required", "the database file (created, WAL)", "out/errors.db"},
    {"table", FieldType::string, "required", "the table (created if missing)", "errors"},
    {"columns", FieldType::columns, "",
     "{name: TYPE} or a list of names (default: the first record's fields and types)", "{id: INTEGER, url: TEXT}"},
    {"key", FieldType::list, "", "primary key columns: rows are upserted, so replays are idempotent", "[id]"},
    {"exactly_once", FieldType::boolean, "false", "store the checkpoint in the same transaction as each batch",
     "true"},
    kRememberDeliveriesField,
    {"synchronous", FieldType::choice, "full", "SQLite's durability setting: full, normal or off", "normal"},
};
const std::string_view kExamples[] = {
    "{path: out.db, table: errors, columns: {id: INTEGER, url: TEXT}, key: [id], exactly_once: true, "
    "remember_deliveries: 30d, synchronous: normal}",
    "{path: out.db, table: t, columns: [id, url]}",
};
const FieldDefault kCommonDefaults[] = {{"batch.size", "5000"}, {"batch.linger", "200ms"}};
}  // namespace
extern const KindFields sqlite_sink_fields{kFields, kExamples, kCommonDefaults};

SinkBuilder parse_sqlite_sink(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common) {
  auto cfg = std::make_shared<SqliteConfig>();
  common.batching.size = 5000;
  common.batching.linger = std::chrono::milliseconds(200);
  size_t before = problems.size();
  ConfigReader r(node, problems, {kFields, sink_common_fields()});
  if (!r.ok()) return {};
  if (auto p = r.string("path", true)) cfg->path = p->text;
  if (auto t = r.string("table", true)) {
    if (t->text.empty()) problems.add(t->where, "table: an empty name");
    cfg->table = t->text;
  }
  read_columns_and_key(r, problems, is_sqlite_type, "INTEGER, TEXT, VARCHAR(20), NUMERIC(10,2)", cfg->columns, cfg->key);
  if (auto clash = sqlite_name_clash(cfg->columns))
    problems.add(r.raw("columns")->where, "columns: '" + clash->first + "' and '" + clash->second +
                                              "' would be one column (SQLite column names ignore case)");
  if (auto e = r.boolean("exactly_once")) cfg->exactly_once = common.exactly_once = *e;
  if (auto d = r.duration("remember_deliveries")) cfg->remember_deliveries = std::max(*d, std::chrono::milliseconds(1000));
  if (auto s = r.choice("synchronous", {"full", "normal", "off"})) {
    cfg->synchronous = *s == "full" ? "FULL" : *s == "normal" ? "NORMAL" : "OFF";
  }
  read_sink_common(r, common);
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run, const SinkIdentity& id) -> std::unique_ptr<PipelineSink> {
    return std::make_unique<SqliteSink>(run, *cfg, id);
  };
}

}  // namespace aetl
