#include "engine/sqlite_wal.h"
#include "stages/fetch/fetch_state.h"

#include <sqlite3.h>

#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "engine/asio.h"

#include "engine/setup_error.h"
#include "engine/blocking_pool.h"
#include "stages/fetch/fetch_request.h"

namespace aetl {

struct FetchState::Db {
  sqlite3* db = nullptr;
  sqlite3_stmt* lookup = nullptr;
  sqlite3_stmt* upsert = nullptr;
  asio::thread_pool thread{1};  // the only thread that touches `db`

  ~Db() {
    thread.join();
    sqlite3_finalize(lookup);
    sqlite3_finalize(upsert);
    sqlite3_close(db);
  }

  /// Rewrites the keys older versions stored with a URL's password in them (see
  /// secret_free_key), zeroing what they leave (secure_delete) and emptying the WAL,
  /// so the secret leaves the file and the rerun still finds its work done.
  void forget_secrets() {
    std::vector<std::string> keys;
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT key FROM afetch_done WHERE key GLOB '*://*:*@*'", -1, &q, nullptr) != SQLITE_OK)
      throw std::runtime_error(sqlite3_errmsg(db));
    while (sqlite3_step(q) == SQLITE_ROW) {
      std::string key(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
      if (secret_free_key(key) != key) keys.push_back(std::move(key));
    }
    sqlite3_finalize(q);
    if (keys.empty()) return;
    exec("PRAGMA secure_delete=ON");
    exec("BEGIN IMMEDIATE");
    if (sqlite3_prepare_v2(db, "UPDATE OR REPLACE afetch_done SET key = ?1 WHERE key = ?2", -1, &q, nullptr) != SQLITE_OK)
      throw std::runtime_error(sqlite3_errmsg(db));
    for (const auto& key : keys) {
      std::string fresh = secret_free_key(key);
      sqlite3_bind_text(q, 1, fresh.data(), static_cast<int>(fresh.size()), SQLITE_STATIC);
      sqlite3_bind_text(q, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
      int rc = sqlite3_step(q);
      sqlite3_reset(q);
      if (rc != SQLITE_DONE) {
        sqlite3_finalize(q);
        throw std::runtime_error(sqlite3_errmsg(db));  // rolled back when the file is closed
      }
    }
    sqlite3_finalize(q);
    exec("COMMIT");
    exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  /// One transaction; rolled back on failure. On the store's thread (or after it ended).
  void record(const Rows& rows) {
    exec("BEGIN IMMEDIATE");
    try {
      for (const auto& [key, outcome] : rows) {
        const char* text = outcome == Outcome::ok ? "ok" : outcome == Outcome::failed ? "failed" : "retry";
        sqlite3_bind_text(upsert, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
        sqlite3_bind_text(upsert, 2, text, -1, SQLITE_STATIC);
        int rc = sqlite3_step(upsert);
        sqlite3_reset(upsert);
        if (rc != SQLITE_DONE) throw std::runtime_error(std::string("state: ") + sqlite3_errmsg(db));
      }
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      throw std::runtime_error(msg);
    }
  }
};

FetchState::FetchState(const std::string& path) : db_(std::make_unique<Db>()) {
  auto fail = [&](const std::string& why) { throw SetupError(path + ": " + why); };
  if (sqlite3_open_v2(path.c_str(), &db_->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    fail(db_->db ? sqlite3_errmsg(db_->db) : "cannot open");
  sqlite3_busy_timeout(db_->db, 10'000);
  try {
    set_wal_mode(db_->db);  // two runs opening a new file at once: tried again a while
    db_->exec("PRAGMA journal_mode=WAL");
    db_->exec("PRAGMA synchronous=NORMAL");
    db_->exec(
        "CREATE TABLE IF NOT EXISTS afetch_done ("
        " key TEXT PRIMARY KEY,"
        " outcome TEXT NOT NULL,"
        " finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))"
        ") WITHOUT ROWID");
    db_->forget_secrets();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  if (sqlite3_prepare_v2(db_->db, "SELECT outcome FROM afetch_done WHERE key = ?1", -1, &db_->lookup, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db_->db,
                         "INSERT INTO afetch_done(key, outcome) VALUES(?1, ?2) "
                         "ON CONFLICT(key) DO UPDATE SET outcome = excluded.outcome, "
                         "finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')",
                         -1, &db_->upsert, nullptr) != SQLITE_OK)
    fail(sqlite3_errmsg(db_->db));
}

FetchState::~FetchState() = default;

asio::awaitable<std::vector<char>> FetchState::already_done(std::vector<std::string> keys) {
  Db* d = db_.get();
  auto job = [d, keys = std::move(keys)] {
    std::vector<char> done(keys.size(), 0);
    for (size_t i = 0; i < keys.size(); ++i) {
      sqlite3_bind_text(d->lookup, 1, keys[i].data(), static_cast<int>(keys[i].size()), SQLITE_STATIC);
      if (sqlite3_step(d->lookup) == SQLITE_ROW) {
        std::string_view outcome(reinterpret_cast<const char*>(sqlite3_column_text(d->lookup, 0)));
        done[i] = outcome == "ok" || outcome == "failed";
      }
      sqlite3_reset(d->lookup);
    }
    return done;
  };
  co_return co_await run_blocking(d->thread, job);
}

void FetchState::record_in_background(Rows rows, asio::any_io_executor ex, std::function<void(std::string)> done) {
  Db* d = db_.get();
  asio::post(d->thread, [d, rows = std::move(rows), ex, done = std::move(done)]() mutable {
    std::string error;
    try {
      d->record(rows);
    } catch (const std::exception& e) {
      error = e.what();
    }
    asio::post(ex, [done = std::move(done), error = std::move(error)] { done(error); });
  });
}

void FetchState::record_now(const Rows& rows) {
  db_->thread.join();
  if (!rows.empty()) db_->record(rows);
}

}  // namespace aetl
