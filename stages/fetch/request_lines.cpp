#include "stages/fetch/request_lines.h"

#include <optional>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "net/http/memory_body.h"
#include "run/checkpoint.h"
#include "stages/fetch/body_store.h"
#include "stages/fetch/fetch_state.h"
#include "stages/fetch/ledger_follower.h"
#include "net/http/http_client.h"
#include "run/run_context.h"

namespace aetl {
namespace {

/// Feeds a file and memory together; the file may pause the transfer.
class TeeBody final : public BodyConsumer {
 public:
  TeeBody(BodyConsumer& file, MemoryBody& memory) : file_(file), memory_(memory) {
    file_.set_resume([this] { resume(); });
  }
  void begin() override {
    file_.begin();
    memory_.begin();
  }
  Verdict on_data(std::string_view chunk) override {
    Verdict v = file_.on_data(chunk);
    if (v == Verdict::accepted || v == Verdict::accepted_pause) memory_.on_data(chunk);
    return v;
  }
  std::string failure_message() const override { return file_.failure_message(); }

 private:
  BodyConsumer& file_;
  MemoryBody& memory_;
};

/// Runs `op` again while it fails for want of file descriptors (transfers ending
/// free theirs): up to 8 tries, 20 ms apart and doubling. Other errors pass through.
template <class T, class Op>
asio::awaitable<T> retry_fd_shortage(asio::io_context& io, Op op) {
  auto pause = std::chrono::milliseconds(20);
  for (int attempt = 1;; ++attempt) {
    try {
      co_return co_await op();
    } catch (const BodyStoreError& e) {
      if (!e.transient() || attempt == 8) throw;
    }
    asio::steady_timer sleep(io, pause);
    co_await sleep.async_wait(asio::use_awaitable);
    pause *= 2;
  }
}

Outcome outcome_of(bool ok, const HttpResponse& resp) {
  if (ok) return Outcome::ok;
  return is_retryable(resp) ? Outcome::failed_retry : Outcome::failed;
}

}  // namespace

class RequestLines::Job final : public FetchJob {
 public:
  Job(RequestLines& mode, ParsedRequest parsed) : mode_(mode), req_(std::move(parsed)) {}
  const HttpRequest& request() const override { return req_.request; }
  BodyConsumer* body() override { return consumer_; }

  asio::awaitable<bool> open() override {
    BodyStore* store = mode_.store_;
    if (store) {
      try {
        file_ = co_await retry_fd_shortage<std::unique_ptr<BodyStore::File>>(mode_.ctx_.io,
                                                                            [store] { return store->open(); });
      } catch (const std::exception& e) {
        setup_error_ = std::string("saving body: ") + e.what();
        co_return false;
      }
    }
    bool want_memory = mode_.options_.body_mode != BodyMode::none;
    if (file_ && want_memory) {
      tee_.emplace(*file_, memory_);
      consumer_ = &*tee_;
    } else if (file_) {
      consumer_ = file_.get();
    } else if (want_memory) {
      consumer_ = &memory_;
    }
    co_return true;
  }

  asio::awaitable<void> before_attempt() override {
    if (file_) co_await file_->settle();  // the earlier attempt's disk write ends first
  }

  asio::awaitable<void> drop() override {
    if (file_) co_await file_->discard();
    ++mode_.stats_.aborted;
  }

  asio::awaitable<Finished> finish(const Attempted& attempted) override {
    const RequestLinesOptions& options = mode_.options_;
    FetchStats& stats = mode_.stats_;
    const HttpResponse& resp = attempted.response;
    FetchResult result;
    result.request = &req_;
    result.response = &resp;
    result.attempts = attempted.attempts;
    result.insecure = options.insecure;
    result.body_mode = options.body_mode;
    result.ok = setup_error_.empty() && is_success(resp);
    result.error = setup_error_.empty() ? attempt_error(attempted) : setup_error_;
    if (options.body_mode != BodyMode::none && resp.curl_code == 0 && setup_error_.empty())
      result.body = &memory_.data;
    check_json_body(result);
    bool save_failed = file_ && file_->failed();  // the disk's trouble, not the URL's: a rerun tries again
    if (file_) {
      if (result.ok) {
        try {
          auto commit = [this] { return file_->commit(req_.url, req_.key); };
          result.path = co_await retry_fd_shortage<std::string>(mode_.ctx_.io, commit);
        } catch (const std::exception& e) {
          result.ok = false;
          result.error = std::string("saving body: ") + e.what();
          save_failed = true;
        }
      }
      if (!result.path) co_await file_->discard();
    }

    Finished f;
    f.outcome = setup_error_.empty() && !save_failed ? outcome_of(result.ok, resp) : Outcome::failed_retry;
    Record out;
    out.data = fetch_result_json(result);
    out.pos = pos;
    out.part = part;
    out.outcome = f.outcome;
    ++stats.done;
    result.ok ? ++stats.ok : ++stats.failed;
    stats.bytes += static_cast<uint64_t>(resp.bytes);
    f.record = std::move(out);
    co_return f;
  }

 private:
  RequestLines& mode_;
  ParsedRequest req_;
  std::unique_ptr<BodyStore::File> file_;
  MemoryBody memory_;
  std::optional<TeeBody> tee_;
  BodyConsumer* consumer_ = nullptr;
  std::string setup_error_;
};

RequestLines::RequestLines(StageContext& ctx, RequestLinesOptions options, BodyStore* store, FetchStats& stats,
                           AckTracker* tracker)
    : ctx_(ctx), options_(std::move(options)), store_(store), stats_(stats), tracker_(tracker) {}

void RequestLines::skipped(FetchJob& job) {
  ++stats_.skipped_done;
  if (tracker_) tracker_->ack(job.pos);
}

RequestLines::~RequestLines() = default;

FetchMode::Made RequestLines::make(Record& record) {
  Made made;
  LineKind kind = LineKind::request;
  std::string error;
  std::optional<ParsedRequest> parsed;
  if (record.outcome == Outcome::input_error)
    error = "line longer than the --max-line limit";
  else
    parsed = parse_request_line(record.data, options_.defaults, kind, error);
  if (kind == LineKind::skip) {  // a comment line
    if (tracker_) tracker_->ack(record.pos);
    return made;
  }
  ++stats_.read;
  if (parsed) {
    std::string host = parsed->url.host_key();
    std::string key = parsed->key;
    auto job = std::make_unique<Job>(*this, std::move(*parsed));
    job->host = std::move(host);
    job->key = std::move(key);
    job->pos = record.pos;
    job->part = record.part;
    made.job = std::move(job);
    return made;
  }
  const std::string& name = ctx_.input_names.at(record.pos.source);
  spdlog::error("{}:{}: {}", name, record.pos.line, error);
  Record out;
  out.data = input_error_json(record.data, name, record.pos.line, error);
  out.outcome = Outcome::input_error;
  out.pos = record.pos;
  out.part = record.part;
  ++stats_.input_errors;
  made.pass_on = std::move(out);
  return made;
}

void RequestLines::attempt_ended(const HttpResponse& resp) {
  --stats_.in_flight;
  if (resp.aborted) return;
  if (resp.status >= 100 && resp.status < 600)
    ++stats_.by_class[static_cast<size_t>(resp.status / 100)];
  else
    ++stats_.by_class[0];
  stats_.latency.add(resp.total_ms);
}

namespace {

class RequestLinesStage final : public Stage {
 public:
  RequestLinesStage(RunContext& run, std::shared_ptr<const RequestLinesSetup> setup) : run_(run), options_(setup->stage) {
    StageContext& ctx = run.stage;
    if (!setup->ledger.empty()) {
      follower_ = std::make_unique<LedgerFollower>(std::make_unique<FetchState>(setup->ledger), run.tracker, run.checkpoints,
                                                   ctx.io.get_executor(), "--state " + setup->ledger);
      options_.filter = &follower_->ledger();
      options_.follower = follower_.get();
    }
    if (!setup->out_dir.empty())
      store_ = std::make_unique<BodyStore>(setup->out_dir, ctx.io, ctx.pool, follower_ != nullptr);
    mode_ = std::make_unique<RequestLines>(ctx, setup->lines, store_.get(), *setup->stats, &run.tracker);
  }

  asio::awaitable<void> run(BatchChannel& in, BatchChannel& out) override {
    FetchStage stage(run_.stage, options_, run_.http(), *mode_);
    co_await stage.run(in, out);
  }

 private:
  RunContext& run_;
  FetchStageOptions options_;
  std::unique_ptr<LedgerFollower> follower_;
  std::unique_ptr<BodyStore> store_;
  std::unique_ptr<RequestLines> mode_;
};

}  // namespace

StageBuilder request_lines_stage(RequestLinesSetup setup) {
  auto shared = std::make_shared<const RequestLinesSetup>(std::move(setup));
  return [shared](RunContext& run, PartStats&) -> std::unique_ptr<Stage> {
    return std::make_unique<RequestLinesStage>(run, shared);
  };
}

}  // namespace aetl
