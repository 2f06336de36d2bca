#include "run/state_store.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "engine/blocking_pool.h"
#include "engine/sqlite_wal.h"
#include "engine/hash.h"

namespace aetl {
namespace {

/// SQLite's message, and the system's when an I/O error came from one (a full
/// disk shows up as "disk I/O error" alone otherwise).
std::string sqlite_error(sqlite3* db) {
  std::string msg = sqlite3_errmsg(db);
  int primary = sqlite3_extended_errcode(db) & 0xff;
  int sys = sqlite3_system_errno(db);
  if (sys != 0 && (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN))
    msg += std::string(" (") + std::strerror(sys) + ")";
  return msg;
}

}  // namespace

struct StateStore::Db {
  sqlite3* db = nullptr;
  std::mutex mu;  // saves run on pool threads, one at a time
  ~Db() { sqlite3_close(db); }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      sqlite3_free(err);
      throw std::runtime_error(sqlite_error(db));
    }
  }
};

StateStore::StateStore(const std::string& path) : path_(path), db_(std::make_unique<Db>()) {
  auto fail = [&](const std::string& why) { throw std::runtime_error(path + ": " + why); };
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (sqlite3_open_v2(path.c_str(), &db_->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK)
    fail(std::string("cannot open the state store: ") + (db_->db ? sqlite_error(db_->db) : "out of memory"));
  sqlite3_busy_timeout(db_->db, 10'000);
  try {
    if (set_wal_mode(db_->db) != SQLITE_OK) throw std::runtime_error(sqlite_error(db_->db));
    db_->exec("PRAGMA synchronous=FULL");
    db_->exec(
        "CREATE TABLE IF NOT EXISTS aetl_checkpoints ("
        " pipeline TEXT PRIMARY KEY,"
        " checkpoint TEXT NOT NULL,"
        " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))");
  } catch (const std::exception& e) {
    fail(std::string("not a usable state store: ") + e.what());
  }
}

StateStore::~StateStore() = default;

std::optional<std::string> StateStore::load(const std::string& pipeline) {
  std::lock_guard lock(db_->mu);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_->db, "SELECT checkpoint FROM aetl_checkpoints WHERE pipeline = ?", -1, &st, nullptr) !=
      SQLITE_OK)
    throw std::runtime_error(path_ + ": " + sqlite_error(db_->db));
  sqlite3_bind_text(st, 1, pipeline.data(), static_cast<int>(pipeline.size()), SQLITE_TRANSIENT);
  std::optional<std::string> out;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw std::runtime_error(path_ + ": " + sqlite_error(db_->db));
  return out;
}

asio::awaitable<void> StateStore::save(BlockingPool& pool, const std::string& pipeline, std::string json) {
  Db* db = db_.get();
  std::string where = path_;
  auto job = [db, pipeline, json = std::move(json), where]() {
    std::lock_guard lock(db->mu);
    sqlite3_stmt* st = nullptr;
    const char* sql =
        "INSERT INTO aetl_checkpoints(pipeline, checkpoint) VALUES(?, ?) "
        "ON CONFLICT(pipeline) DO UPDATE SET checkpoint = excluded.checkpoint,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')";
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error(where + ": " + sqlite_error(db->db));
    sqlite3_bind_text(st, 1, pipeline.data(), static_cast<int>(pipeline.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 2, json.data(), static_cast<int>(json.size()), SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw std::runtime_error(where + ": cannot save the checkpoint: " + sqlite_error(db->db));
  };
  co_await run_blocking(pool.pool(), job);
}

void StateStore::clear(const std::string& pipeline) {
  std::lock_guard lock(db_->mu);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_->db, "DELETE FROM aetl_checkpoints WHERE pipeline = ?", -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error(path_ + ": " + sqlite_error(db_->db));
  sqlite3_bind_text(st, 1, pipeline.data(), static_cast<int>(pipeline.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw std::runtime_error(path_ + ": " + sqlite_error(db_->db));
}

std::string default_state_path(const std::string& pipeline_file) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(pipeline_file, ec);
  std::string base = std::filesystem::path(pipeline_file).stem().string();
  std::string dir;
  if (const char* x = ::getenv("XDG_STATE_HOME"); x && *x) dir = std::string(x) + "/aetl";
  else if (const char* h = ::getenv("HOME"); h && *h) dir = std::string(h) + "/.local/state/aetl";
  else dir = ".aetl-state";
  return dir + "/" + base + "-" + fnv1a_hex(abs.string()).substr(0, 8) + ".sqlite";
}

}  // namespace aetl
