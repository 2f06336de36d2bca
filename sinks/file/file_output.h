#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/stage_context.h"

namespace aetl {

/// What a sink's format adds to FileOutput's rules.
struct FileOutputRules {
  /// Whether `last`, an appended file's last line without its line break, is a
  /// whole record (it then gets its line break); null: never (it is cut).
  std::function<bool(std::string_view last)> complete_line;
  /// An appended or resumed file must be readable (csv: its header row).
  bool needs_head = false;
};

/// The output file of the jsonl and csv sinks, or stdout ("-").
///  - A fresh run truncates the file (unless `append`); a resumed run cuts it back
///    to the length its checkpoint recorded, so what was written after the last
///    checkpoint is not there twice; a fresh run with `append` cuts an unfinished
///    last line (left by a run killed mid-write; its record was never acknowledged),
///    with a warning; a last line that only lacks its line break (`complete_line`
///    says it is a whole record) gets one instead.
///  - A file that exists and is not a plain file (a FIFO, a device) is opened
///    write-only (a FIFO waits for its reader, or for the run to stop); so is a
///    plain file we may write but not read (then nothing is cut and head() is
///    empty; refused when Rules::needs_head).
///  - Only a plain file of ours is retried after a failed write (it is cut back
///    first); a stream (stdout, a pipe) cannot take a batch back: its errors are final.
///  - Each write goes to the durable length (a retried write overwrites a partial
///    one) and is fsync'd before it counts; durable_length() is what checkpoints record.
///  - "-", /dev/stdout and /dev/stderr are never truncated nor checkpointed
///    (when they are a plain file, each write is still fsync'd);
///    pipes and terminals are written in PIPE_BUF pieces after poll(); a
///    closed pipe ends the run quietly.
class FileOutput {
 public:
  FileOutput(StageContext& ctx, std::string path, bool append, bool fsync, FileOutputRules rules);
  ~FileOutput();

  /// Throws SetupError for a file that cannot be opened or is shorter than the
  /// checkpoint says (changed behind our back).
  asio::awaitable<void> open(std::optional<uint64_t> resume_length);
  /// False: the reader went away (or the run aborted while it would not read).
  /// Throws SinkError (a full disk is transient: retried).
  /// `data` is only read (the caller keeps it, and its capacity, for the next write).
  asio::awaitable<bool> write(const std::string& data);
  asio::awaitable<void> close();

  bool is_stdout() const { return path_ == "-"; }
  std::optional<uint64_t> durable_length() const;
  /// A plain file's inode, read at open (a checkpoint tells by it that the file
  /// was replaced since: `aetl replay` rewrote a dead letter); else nothing.
  std::optional<uint64_t> file_id() const;
  uint64_t length() const { return length_; }
  const std::string& path() const { return path_; }
  /// The first bytes of the file (csv: its header line), read at open.
  const std::string& head() const { return head_; }

 private:
  StageContext& ctx_;
  std::string path_;
  bool append_;
  bool fsync_;
  FileOutputRules rules_;
  bool gone_ = false;  // stopped while a FIFO waited for its reader: nothing is written
  int fd_ = -1;
  uint64_t inode_ = 0;
  bool regular_ = false;  // a plain file of ours: written at offsets, cut back on failure
  bool stream_ = false;  // /dev/stdout or /dev/stderr
  bool stream_file_ = false;  // stdout or a stream that is a plain file: written whole, fsync'd
  uint64_t length_ = 0;  // durable bytes
  std::string head_;
};

struct Checkpoint;

/// The length a checkpoint recorded for the file sink named `key`, if any.
std::optional<uint64_t> checkpointed_length(const Checkpoint* resume, const std::string& key);

}  // namespace aetl
