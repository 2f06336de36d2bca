#pragma once
#include <memory>
#include <string>

namespace aetl {

/// An exclusive lock a run holds on its state store for its whole life: flock(2)
/// on `STATE.lock` beside the store, so the kernel drops it when the process ends,
/// even by kill -9, and no stale lock is ever left. The file holds the holder's pid
/// (for the message a second run prints); it is never removed, which keeps the
/// lock race-free.
class RunLock {
 public:
  /// Takes the lock on `state_path`. When another process holds it: with `wait`,
  /// blocks until it is free (`on_wait(holder_pid)` is called once first; pid 0 when
  /// unknown); without, throws SetupError(Kind::busy) with
  /// `busy_message(holder_pid)`. Other failures (no permission, a read-only
  /// directory) throw SetupError (exit 2) naming the lock file.
  template <class BusyMessage, class OnWait>
  RunLock(const std::string& state_path, bool wait, BusyMessage busy_message, OnWait on_wait)
      : RunLock(state_path) {
    if (try_lock()) return;
    long pid = holder_pid();
    if (!wait) fail_busy(busy_message(pid));
    on_wait(pid);
    lock_blocking();
  }
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }

  /// A pipeline's lock, its messages naming it: busy, "pipeline 'NAME' is
  /// RUNNING (pid N holds STATE.lock); --wait waits for it" (`running`: "running",
  /// "already running"); waiting, an info line.
  static std::unique_ptr<RunLock> for_pipeline(const std::string& state_path, const std::string& name, bool wait,
                                               const std::string& running);

 private:
  explicit RunLock(const std::string& state_path);
  bool try_lock();
  void lock_blocking();
  long holder_pid() const;
  [[noreturn]] void fail_busy(const std::string& message);
  void write_pid();

  std::string path_;
  int fd_ = -1;
};

}  // namespace aetl
