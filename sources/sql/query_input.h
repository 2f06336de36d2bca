#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "run/checkpoint.h"
#include "run/run_context.h"

namespace aetl {

/// An `incremental` window of a SQL source: the rows with low < column <= high,
/// `rows` of them when counted at the window's start.
struct QueryWindow {
  std::optional<std::string> low;  // none: from the start
  std::string high;
  uint64_t rows = 0;
  int attempt = 1;  // > 1: the same window read again after an unfinished run
};

/// What a SQL source (postgres, mysql) reads as its one input, and where a
/// resumed run starts in it. Without `incremental`: the query's rows, numbered
/// from 1, named after the query (`base_name`), resumed from the checkpoint's
/// mark of that name. With it: each run reads a window named base_name + its
/// bounds as JSON ({"after":..,"upto":..,"rows":N,"attempt":N}), kept in the
/// checkpoint: the last window is read again whole if it was not finished (the
/// next run reads the same bounds: at least once), else the next one starts at
/// its end. The last window's mark is carried until a new window replaces it,
/// so a run that finds nothing new keeps it. Loop thread; made in the source's
/// constructor.
class QueryInput {
 public:
  QueryInput(RunContext& run, std::string base_name, bool incremental);

  /// The input this run reads; empty with `incremental` until open() (and when
  /// there is nothing new).
  const std::string& name() const { return name_; }
  /// The rows of the input handled before (a resumed run skips them).
  const InputMark& mark() const { return mark_; }

  /// With `incremental`: the bounds this run's window starts from: the last
  /// window again (same low and high) if it was not finished, else from its high
  /// (high still to find), else from the start.
  QueryWindow next_window() const;
  /// The last window was not finished: its high stays (no new rows join it).
  bool again() const { return again_; }
  /// Makes `w` (with its high and row count found) this run's input.
  void open(const QueryWindow& w);
  /// The window opened by open(), if any.
  const std::optional<QueryWindow>& window() const { return window_; }

 private:
  static std::optional<QueryWindow> parse(std::string_view text);
  RunContext& run_;
  std::string base_name_;
  std::string name_;
  std::string carried_;  // the last finished window's name, until a new one replaces it
  std::optional<QueryWindow> previous_;
  std::optional<QueryWindow> window_;
  InputMark mark_;
  bool again_ = false;
};

}  // namespace aetl
