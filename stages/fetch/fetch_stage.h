#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "engine/channel.h"
#include "engine/engine.h"
#include "engine/retry.h"
#include "engine/stage_context.h"
#include "stages/fetch/fetch_request.h"
#include "stages/fetch/fetch_result.h"
#include "stages/fetch/fetch_stats.h"

namespace aetl {

class HttpClient;
class BodyStore;

struct FetchStageOptions {
  size_t concurrency = 50;  ///< transfers in flight at most
  size_t per_host = 0;      ///< transfers in flight per host:port; 0 = no extra limit
  double rate = 0;          ///< requests started per second; 0 = unlimited
  double burst = 1;
  RetryPolicy retry;
  bool ordered = false;     ///< emit in input order (reorder window = concurrency)
  RequestDefaults defaults;
  BodyMode body_mode = BodyMode::none;
  bool insecure = false;    ///< mark every result line
  size_t batch_size = 512;
  std::chrono::milliseconds linger{20};
};

/// Tells which requests an earlier run already finished (afetch --state).
class ResumeFilter {
 public:
  virtual ~ResumeFilter() = default;
  /// One flag per key, in order: true if that request needs no new fetch.
  virtual asio::awaitable<std::vector<char>> already_done(std::vector<std::string> keys) = 0;
};

/// The fetch stage in its afetch form: each input record is a request line
/// (a URL or a JSON request object); each output record is the result line.
/// Malformed lines become error records in place; lines a resume filter knows
/// are dropped; a stop lets work in flight finish, an abort drops it (no line,
/// nothing recorded, so the next run does it again).
class FetchStage final : public Stage {
 public:
  FetchStage(StageContext& ctx, FetchStageOptions options, HttpClient& client, BodyStore* store,
             ResumeFilter* filter, FetchStats& stats);
  ~FetchStage() override;

  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override;

 private:
  struct Item;
  struct Limits;
  asio::awaitable<void> dispatch(BatchChannel& in);
  /// fetch_one, plus: an exception aborts the run and still releases `seq`.
  asio::awaitable<void> fetch_guarded(std::shared_ptr<Item> item, uint64_t seq);
  /// Pushes exactly one result (or nothing-result) for `seq` unless it throws.
  asio::awaitable<void> fetch_one(std::shared_ptr<Item> item, uint64_t seq);
  asio::awaitable<std::vector<std::shared_ptr<Item>>> prepare(Batch& batch);
  void count_response(const struct HttpResponse& resp);

  StageContext& ctx_;
  FetchStageOptions options_;
  HttpClient& client_;
  BodyStore* store_;
  ResumeFilter* filter_;
  FetchStats& stats_;
  std::unique_ptr<Limits> limits_;
  uint64_t next_seq_ = 0;
};

/// True for outcomes worth another attempt: connection and timeout errors,
/// broken transfers, 429 and 5xx.
bool is_retryable(const struct HttpResponse& response);

}  // namespace aetl
