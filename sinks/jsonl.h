#pragma once
#include <string>

#include "run/pipeline.h"

namespace aetl {

/// The `jsonl` sink as afetch uses it (the result lines): `path` ("-": stdout),
/// truncated unless `append`; each batch fsync'd before it counts when `fsync`.
SinkBuilder jsonl_file_sink(std::string path, bool append, bool fsync);

}  // namespace aetl
