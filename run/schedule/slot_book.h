#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"
#include "run/schedule/schedule.h"

namespace aetl {

/// The right to run a pipeline now, held for one fire. Released when destroyed.
class RunLease {
 public:
  virtual ~RunLease() = default;
  /// Keeps the lease while the fire runs. `on_lost(why)` is called at most once,
  /// from any thread, if it is lost (an expired Redis lock another instance took).
  virtual void keep(std::function<void(const std::string&)> on_lost) { (void)on_lost; }
  /// Awaited on the run's loop before each commit of an exactly-once sink: throws
  /// CheckpointTakenOver unless the lease is still held with time to spare, so a
  /// holder that was paused past its expiry commits nothing. Empty when the lease
  /// cannot be lost (a flock held by this process).
  virtual std::function<asio::awaitable<void>()> fence() { return {}; }
  /// Whether the lease is the run lock of the state store (the run must not take it again).
  virtual bool is_state_lock() const { return false; }
};

/// Where a schedule's fires are claimed, so that each slot of a pipeline runs once
/// however many schedulers (processes, cron lines, hosts) reach it. Calls block;
/// they are made between fires.
class SlotBook {
 public:
  virtual ~SlotBook() = default;
  /// "the state store PATH", "redis 127.0.0.1:6379/0", for messages.
  virtual std::string where() const = 0;
  /// The newest slot claimed so far by anyone, if any.
  virtual std::optional<Slot> last_claimed() = 0;
  /// Who claimed `slot` ("host pid N"), if anyone (and it is still remembered).
  virtual std::optional<std::string> holder(Slot slot) = 0;
  /// Takes the pipeline's run lock for `owner`; nullptr and `holder` set if
  /// another holds it.
  virtual std::unique_ptr<RunLease> lock(const std::string& owner, std::string& holder) = 0;
  /// Claims `slot` for `owner` (which holds the run lock). Returns the holder
  /// when it was claimed already, nullopt when this claim took it.
  virtual std::optional<std::string> claim(Slot slot, const std::string& owner) = 0;
};

/// The state store's book: the slots in a table of the store, the run lock its
/// flock (run/run_lock.h). For one host.
std::unique_ptr<SlotBook> local_slot_book(const std::string& state_path, const std::string& pipeline);

/// Redis's book, for many hosts: keys `aetl:schedule:PIPELINE:slot:EPOCH` (SET NX,
/// kept a week), `...:last` and the run lock `...:lock` (SET NX PX `lock_ttl`, renewed
/// every third of it, released only by its holder's token). Throws
/// std::runtime_error if Redis cannot be reached.
std::unique_ptr<SlotBook> redis_slot_book(const ScheduleSpec& spec, const std::string& pipeline);

/// "host pid N" for this process.
std::string this_process_owner();

}  // namespace aetl
