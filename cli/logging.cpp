#include "cli/logging.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "engine/setup_error.h"
#include "engine/json_writer.h"

namespace aetl::logging {
namespace {

std::mutex& stderr_mutex() {
  static std::mutex m;
  return m;
}

void (*g_progress_clear)() = nullptr;

void write_all_stderr(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr is gone; nothing sensible is left to do
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

std::string timestamp(spdlog::log_clock::time_point tp) {
  auto t = spdlog::log_clock::to_time_t(tp);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

/// Formats each message itself (text or JSON, with proper escaping) and
/// shares the stderr lock with the progress display.
class StderrSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  StderrSink(std::string program, Format format) : program_(std::move(program)), format_(format) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view text(msg.payload.data(), msg.payload.size());
    auto level_sv = spdlog::level::to_string_view(msg.level);
    std::string_view level(level_sv.data(), level_sv.size());
    std::string line;
    if (format_ == Format::json) {
      JsonWriter w(line);
      w.begin_object();
      w.key("time").string(timestamp(msg.time));
      w.key("level").string(level);
      w.key("program").string(program_);
      w.key("msg").string(text);
      w.end_object();
    } else {
      line.append(program_).append(": ");
      if (msg.level >= spdlog::level::warn || msg.level <= spdlog::level::debug) line.append(level.data(), level.size()).append(": ");
      line.append(text);
    }
    line.push_back('\n');
    std::lock_guard lock(stderr_mutex());
    if (g_progress_clear) g_progress_clear();
    write_all_stderr(line);
  }
  void flush_() override {}

 private:
  std::string program_;
  Format format_;
};

}  // namespace

void setup(std::string_view program, std::string_view level, Format format) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off")
    throw SetupError("--log-level: unknown level '" + std::string(level) +
                     "' (expected trace, debug, info, warn, error or off)");
  auto sink = std::make_shared<StderrSink>(std::string(program), format);
  auto logger = std::make_shared<spdlog::logger>(std::string(program), sink);
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
}

void print_line(std::string_view line) {
  std::string s(line);
  s.push_back('\n');
  std::lock_guard lock(stderr_mutex());
  if (g_progress_clear) g_progress_clear();
  write_all_stderr(s);
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

bool color_allowed() {
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color && *no_color) return false;
  const char* term = std::getenv("TERM");
  if (term && std::strcmp(term, "dumb") == 0) return false;
  return stderr_is_terminal();
}

void set_progress_clear(void (*clear)()) {
  std::lock_guard lock(stderr_mutex());
  g_progress_clear = clear;
}

void write_raw(std::string_view bytes) {
  std::lock_guard lock(stderr_mutex());
  write_all_stderr(bytes);
}

}  // namespace aetl::logging
