#pragma once
#include <string>
#include <string_view>

/// How messages reach stderr. Logs go through spdlog's stderr logger; the
/// progress display (cli/run_progress.h) shares the same lock so a log line never
/// lands in the middle of a progress bar. Nothing else writes to stderr.
namespace aetl::logging {

enum class Format { text, json };

/// Installs the stderr logger. `level` is one of trace, debug, info, warn, error, off.
/// Throws SetupError for an unknown level.
void setup(std::string_view program, std::string_view level, Format format);

/// Writes one whole line to stderr (a newline is added), bypassing the log format:
/// used for the one-line usage errors and the final summary.
void print_line(std::string_view line);

/// True when stderr is a terminal and colour is allowed (NO_COLOR unset, TERM not dumb).
bool stderr_is_terminal();
bool color_allowed();

/// Hooks the progress display uses to clear its line before a log line is printed.
void set_progress_clear(void (*clear)());

/// Writes raw bytes to stderr under the same lock (the progress display's redraws).
void write_raw(std::string_view bytes);

}  // namespace aetl::logging
