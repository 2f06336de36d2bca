#pragma once
#include <chrono>
#include <memory>

#include "engine/stage_context.h"
#include "run/pipeline.h"
#include "stages/fetch.h"
#include "stages/fetch/fetch_request.h"
#include "stages/fetch/fetch_result.h"
#include "stages/fetch/fetch_stats.h"

namespace aetl {

class AckTracker;
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
/// With a `tracker`, the records that become nothing (comment lines, requests the
/// ledger has as done) are acknowledged here.
class RequestLines final : public FetchMode {
 public:
  RequestLines(StageContext& ctx, RequestLinesOptions options, BodyStore* store, FetchStats& stats,
               AckTracker* tracker = nullptr);
  ~RequestLines() override;

  Made make(Record& record) override;
  void skipped(FetchJob& job) override;
  void attempt_started() override { ++stats_.in_flight; }
  void attempt_ended(const HttpResponse& response) override;
  void retry_waiting(std::chrono::milliseconds) override { ++stats_.retries; }
  void host_limit(const std::string& host, size_t limit) override { stats_.host_limits[host] = limit; }

 private:
  class Job;
  StageContext& ctx_;
  RequestLinesOptions options_;
  BodyStore* store_;
  FetchStats& stats_;
  AckTracker* tracker_;
};

/// afetch's part of a run (the `fetch` stage with request lines): what it is made of.
struct RequestLinesSetup {
  FetchStageOptions stage;    ///< limits and order (the ledger's filter and follower are set at build)
  RequestLinesOptions lines;  ///< -X, -H, --data, --body, -k
  std::string out_dir;        ///< -o: 2xx bodies saved under it (BodyStore); empty: not saved
  std::string ledger;         ///< --state: requests done before are skipped, each outcome recorded; empty: none
  FetchStats* stats = nullptr;  ///< the counters, kept by the command for its display and exit code
};

/// Builds afetch's fetch stage: the one FetchStage with RequestLines, the run's
/// HTTP client, and with a ledger the same follower as a pipeline's `ledger:`
/// (an outcome is recorded once its result line is written). Opening the ledger
/// or the body directory fails with a SetupError at build time.
StageBuilder request_lines_stage(RequestLinesSetup setup);

}  // namespace aetl
