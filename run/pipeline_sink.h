#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/record.h"
#include "engine/retry.h"

namespace aetl {

struct Checkpoint;
class RecordStep;

/// How a sink's records are grouped into writes (`batch: {size, bytes, linger}`).
struct SinkBatching {
  size_t size = 1000;                        ///< records per write at most
  size_t bytes = 4 << 20;                    ///< bytes of records (and their rows) per write at most
  std::chrono::milliseconds linger{500};     ///< how long a partial batch may wait
};

/// A failed write. `transient` errors (a locked database, a full disk) are retried
/// with the sink's backoff; the others end the run.
class SinkError : public std::runtime_error {
 public:
  SinkError(const std::string& message, bool transient) : std::runtime_error(message), transient(transient) {}
  bool transient;
};

/// An exactly-once sink found its stored checkpoint changed by another run since
/// this run read it (two runs of one pipeline with different state stores, or on
/// two hosts): the batch is rolled back and the run stops, committing nothing more
/// (exit 75). Never retried.
class CheckpointTakenOver : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The message of CheckpointTakenOver for `sink` (its describe()) and `pipeline`.
inline std::string taken_over_message(const std::string& sink, const std::string& pipeline) {
  return sink + ": another run of pipeline '" + pipeline +
         "' has committed since this run read the checkpoint; this run stops without committing more";
}

/// Who a sink is in its pipeline.
struct SinkIdentity {
  /// Names it in checkpoints (file lengths) and messages: "sink" for the one sink
  /// of `sink:`, its name under `sinks:`, "dead_letter".
  std::string key;
  /// Keys what an exactly-once sink stores beside its data (its checkpoint, its
  /// delivery IDs): the pipeline's name for `sink:`, "PIPELINE/NAME" for a named
  /// sink, so that two sinks in one database keep theirs apart.
  std::string checkpoint_name;
};

/// What a sink gets with each batch.
struct WriteContext {
  /// Rows the destination refused one by one (a constraint): they go to the dead
  /// letter with this message instead of being acknowledged as written.
  std::vector<std::pair<size_t, std::string>> rejected;
  /// For exactly-once sinks: the checkpoint as it will stand once this batch is
  /// committed, given the indices in `rejected`. Callable on any thread.
  std::function<std::string(const std::vector<std::pair<size_t, std::string>>&)> checkpoint_after;
  /// What prepare() made of this batch (nullptr if the sink does not prepare).
  std::shared_ptr<void> prepared;
  /// With a queue source, for exactly-once sinks (instead of checkpoint_after):
  /// per record, the identity of its delivery. The sink records each written
  /// record's ID in the batch's transaction, and skips a record whose ID is there
  /// already (an earlier delivery committed it), listing its index in `redelivered`.
  /// A refused record's ID is not kept; a record with an empty ID is written
  /// and nothing is kept for it.
  std::vector<std::string> delivery_ids;
  /// Every record of the batch is its entry's first delivery (RunContext::Delivery::first):
  /// a sink may keep the IDs without looking them up first, as long as keeping
  /// one that is there already fails the attempt (which is then made again).
  bool first_deliveries = false;
  /// The attempt: 1, 2, ...
  int attempt = 1;
  std::vector<size_t> redelivered;
};

/// A sink kind at run time. The driver batches, retries and acknowledges; the
/// sink only writes durably.
class PipelineSink {
 public:
  virtual ~PipelineSink() = default;
  /// Prepares the destination. `resume`: the checkpoint being resumed from (file
  /// sinks cut their file back to the length recorded in it); nullptr for a fresh run.
  /// `key` names the sink in checkpoints ("sink", "dead_letter").
  virtual asio::awaitable<void> open(const Checkpoint* resume, const std::string& key) = 0;
  /// Writes the batch durably. Returns false when the destination went away for
  /// good (a closed stdout pipe). Throws SinkError.
  virtual asio::awaitable<bool> write(const Batch& batch, WriteContext& wc) = 0;
  /// Optional work on a batch that can run while the previous batch is still being
  /// written (parsing records into rows); handed to write() in wc.prepared. Runs on
  /// the loop; one prepare at a time.
  virtual asio::awaitable<std::shared_ptr<void>> prepare(const Batch&) { co_return nullptr; }
  /// Optional: a record step that encodes each record for this sink (into
  /// Record::row) at the end of the chain of record steps in front of it, on the
  /// step lanes and from the values the steps left, so the sink need not parse
  /// records again. It never drops or fails a record. Called once, before open().
  virtual std::shared_ptr<RecordStep> row_step() { return nullptr; }
  virtual asio::awaitable<void> close() = 0;
  /// File sinks: bytes durably written, recorded in checkpoints.
  virtual std::optional<uint64_t> durable_length() const { return std::nullopt; }
  /// File sinks: the file's identity (its inode), recorded with the dead letter's
  /// length so that a dead letter replaced since (`aetl replay`) is appended to, not cut.
  virtual std::optional<uint64_t> file_id() const { return std::nullopt; }
  /// Exactly-once sinks: the checkpoint stored with the data, read before the run
  /// (also with --from-start): every later commit checks, in its transaction, that
  /// the stored checkpoint is still the one this run read or last wrote, and throws
  /// CheckpointTakenOver if not.
  virtual std::optional<std::string> stored_checkpoint() { return std::nullopt; }
  virtual bool exactly_once() const { return false; }
  /// Exactly-once sinks: stores a checkpoint on its own (the end of a run, when
  /// records handled after the last batch — filtered out, dead-lettered — moved it on).
  virtual asio::awaitable<void> store_checkpoint(std::string) { co_return; }
  /// "sqlite out/errors.db" for messages and the summary.
  virtual std::string describe() const = 0;
};

}  // namespace aetl
