#pragma once
#include <cstdint>
#include <string>

namespace aetl {

/// `aetl replay` rewrites a dead letter in three steps: the new file is written
/// and fsync'd beside it as PATH.replay-tmp; the pipeline's checkpoint records
/// its length and inode (Checkpoint's kDeadLetterFileId); it is renamed over
/// PATH. The checkpoint is the commit: a replay killed between the last two
/// steps is finished by whoever opens the dead letter next (a run, a replay).
std::string dead_letter_rewrite_path(const std::string& path);

/// Finishes a killed rewrite: when PATH is not the file the checkpoint records
/// (`recorded_inode`) and PATH.replay-tmp is, renames it over PATH (and says so).
/// Any other PATH.replay-tmp is a rewrite that was never committed: removed.
/// Throws SetupError if the rename fails.
void finish_dead_letter_rewrite(const std::string& path, uint64_t recorded_inode);

}  // namespace aetl
