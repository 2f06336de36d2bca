#pragma once
#include <functional>
#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace CLI {
class App;
}

namespace aetl {

/// `aetl list`: the kinds of pipeline files, grouped (sources, stages, sinks), with
/// their one-line summaries, on stdout.
std::function<ExitCode()> setup_list_command(CLI::App& app);

/// `aetl explain [source|stage|sink] KIND` (or `aetl explain pipeline`): the declared
/// fields of a kind on stdout. A name that is a source and a sink (postgres) prints
/// both unless the part is given. An unknown kind is a SetupError (one line with a
/// "did you mean", exit 2). The hidden `--table` prints every field of every kind as
/// tab-separated lines (part, kind, field, type, default), for tests and tools.
std::function<ExitCode()> setup_explain_command(CLI::App& app);

/// The words `aetl explain` takes (parts and kind names), for shell completion.
std::vector<std::string> explain_words();

}  // namespace aetl
