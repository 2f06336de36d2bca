#pragma once
#include <sqlite3.h>

#include <chrono>
#include <thread>

namespace aetl {

/// PRAGMA journal_mode=WAL on a connection just opened. Two processes opening
/// one new file at once can see SQLITE_BUSY from it at once, without the busy
/// handler being asked (the switch takes an exclusive lock, or the other is
/// recovering the WAL): it is tried again for up to `patience`. Returns the last
/// result code (SQLITE_OK once the file is in WAL mode).
inline int set_wal_mode(sqlite3* db, std::chrono::milliseconds patience = std::chrono::milliseconds(10000)) {
  auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) return rc;
    if (std::chrono::steady_clock::now() >= give_up) return rc;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace aetl
