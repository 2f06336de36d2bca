#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "run/pipeline.h"

namespace aetl {

/// The `lines` source as afetch uses it: the inputs named (no globs; none or "-":
/// stdin; .gz decompressed), each line that is not blank passed on as written —
/// a URL or a JSON request object for the fetch stage's request lines — with its
/// position; a line longer than `max_line` passes on as an input_error record
/// holding its first bytes. A missing input is a SetupError before the run starts.
SourceBuilder request_lines_source(std::vector<std::string> paths, size_t max_line);

}  // namespace aetl
