// The slots of one host's schedules, in the state store beside the checkpoints.
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "engine/setup_error.h"
#include "run/run_lock.h"
#include "engine/sqlite_wal.h"
#include "run/schedule/slot_book.h"

namespace aetl {
namespace {

class StateLockLease : public RunLease {
 public:
  explicit StateLockLease(std::unique_ptr<RunLock> lock) : lock_(std::move(lock)) {}
  bool is_state_lock() const override { return true; }

 private:
  std::unique_ptr<RunLock> lock_;
};

class LocalSlotBook : public SlotBook {
 public:
  LocalSlotBook(std::string path, std::string pipeline) : path_(std::move(path)), pipeline_(std::move(pipeline)) {
    std::error_code ec;
    auto dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
      fail("cannot open the state store");
    sqlite3_busy_timeout(db_, 10'000);
    if (set_wal_mode(db_) != SQLITE_OK) fail("cannot run PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS aetl_schedule_slots ("
         " pipeline TEXT NOT NULL, slot INTEGER NOT NULL, holder TEXT NOT NULL,"
         " claimed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
         " PRIMARY KEY (pipeline, slot))");
  }
  ~LocalSlotBook() override { sqlite3_close(db_); }

  std::string where() const override { return "the state store " + path_; }

  std::optional<Slot> last_claimed() override {
    Stmt st(*this, "SELECT max(slot) FROM aetl_schedule_slots WHERE pipeline = ?");
    st.text(1, pipeline_);
    if (st.step() == SQLITE_ROW && sqlite3_column_type(st.s, 0) != SQLITE_NULL)
      return Slot(std::chrono::seconds(sqlite3_column_int64(st.s, 0)));
    return std::nullopt;
  }

  std::optional<std::string> holder(Slot slot) override {
    Stmt st(*this, "SELECT holder FROM aetl_schedule_slots WHERE pipeline = ? AND slot = ?");
    st.text(1, pipeline_);
    sqlite3_bind_int64(st.s, 2, slot.time_since_epoch().count());
    if (st.step() == SQLITE_ROW) return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)));
    return std::nullopt;
  }

  std::unique_ptr<RunLease> lock(const std::string&, std::string& holder) override {
    try {
      auto busy = [&](long pid) {
        holder = pid ? hostname() + " pid " + std::to_string(pid) : "another process";
        return holder;
      };
      return std::make_unique<StateLockLease>(std::make_unique<RunLock>(path_, false, busy, [](long) {}));
    } catch (const SetupError& e) {
      if (e.kind() != SetupError::Kind::busy) throw;
      return nullptr;
    }
  }

  std::optional<std::string> claim(Slot slot, const std::string& owner) override {
    exec("BEGIN IMMEDIATE");
    try {
      if (auto h = holder(slot)) {
        exec("COMMIT");
        return h;
      }
      Stmt st(*this, "INSERT INTO aetl_schedule_slots(pipeline, slot, holder) VALUES(?, ?, ?)");
      st.text(1, pipeline_);
      sqlite3_bind_int64(st.s, 2, slot.time_since_epoch().count());
      st.text(3, owner);
      if (st.step() != SQLITE_DONE) fail("cannot claim a slot");
      // The book keeps the last thousand slots of each pipeline.
      Stmt prune(*this,
                 "DELETE FROM aetl_schedule_slots WHERE pipeline = ? AND slot < (SELECT slot FROM aetl_schedule_slots "
                 "WHERE pipeline = ? ORDER BY slot DESC LIMIT 1 OFFSET 999)");
      prune.text(1, pipeline_);
      prune.text(2, pipeline_);
      if (prune.step() != SQLITE_DONE) fail("cannot prune the slots");
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    return std::nullopt;
  }

 private:
  struct Stmt {
    Stmt(LocalSlotBook& b, const char* sql) : book(b) {
      if (sqlite3_prepare_v2(b.db_, sql, -1, &s, nullptr) != SQLITE_OK) b.fail("cannot read the schedule");
    }
    ~Stmt() { sqlite3_finalize(s); }
    void text(int i, const std::string& v) { sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
    int step() {
      int rc = sqlite3_step(s);
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) book.fail("cannot read the schedule");
      return rc;
    }
    LocalSlotBook& book;
    sqlite3_stmt* s = nullptr;
  };
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(std::string("cannot run ") + sql);
  }
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(path_ + ": " + what + ": " + (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }
  static std::string hostname() {
    char h[256] = {};
    ::gethostname(h, sizeof h - 1);
    return h;
  }

  std::string path_;
  std::string pipeline_;
  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<SlotBook> local_slot_book(const std::string& state_path, const std::string& pipeline) {
  return std::make_unique<LocalSlotBook>(state_path, pipeline);
}

std::string this_process_owner() {
  char h[256] = {};
  ::gethostname(h, sizeof h - 1);
  return std::string(h) + " pid " + std::to_string(::getpid());
}

}  // namespace aetl
