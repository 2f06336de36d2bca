#pragma once
#include <chrono>
#include <memory>

#include "engine/stage_context.h"
#include "stages/fetch.h"
#include "stages/fetch/fetch_request.h"
#include "stages/fetch/fetch_result.h"
#include "stages/fetch/fetch_stats.h"

namespace aetl {

class BodyStore;

struct RequestLinesOptions {
  RequestDefaults defaults;  ///< -X, -H, --data
  BodyMode body_mode = BodyMode::none;
  bool insecure = false;     ///< mark every result line
};

/// afetch's side of the fetch stage: each input record is a request line (a URL
/// or a JSON request object, see parse_request_line); each output record is its
/// result line (afetch(1)), carrying the request's key and outcome for --state.
/// Blank and comment lines vanish; a malformed line becomes an error line in its
/// place. Bodies go to the BodyStore (-o) and/or memory (--body). Counts in FetchStats.
class RequestLines final : public FetchMode {
 public:
  RequestLines(StageContext& ctx, RequestLinesOptions options, BodyStore* store, FetchStats& stats);
  ~RequestLines() override;

  Made make(Record& record) override;
  void skipped(FetchJob&) override { ++stats_.skipped_done; }
  void attempt_started() override { ++stats_.in_flight; }
  void attempt_ended(const HttpResponse& response) override;
  void retry_waiting(std::chrono::milliseconds) override { ++stats_.retries; }

 private:
  class Job;
  StageContext& ctx_;
  RequestLinesOptions options_;
  BodyStore* store_;
  FetchStats& stats_;
};

}  // namespace aetl
