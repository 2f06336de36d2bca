#include "stages/fetch/fetch_stage.h"

#include <curl/curl.h>

#include <optional>
#include <random>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"
#include <spdlog/spdlog.h>

#include "net/http/http_client.h"
#include "net/http/memory_body.h"
#include "engine/keyed_limiter.h"
#include "engine/rate_limiter.h"
#include "run/result_emitter.h"
#include "engine/semaphore.h"
#include "engine/shutdown.h"
#include "stages/fetch/attempt_policy.h"
#include "stages/fetch/body_store.h"
#include "engine/task_group.h"

namespace aetl {

using namespace asio::experimental::awaitable_operators;

/// One request waiting for its turn, or an input line that failed to parse.
struct FetchStage::Item {
  Record record;
  std::optional<ParsedRequest> request;
};

struct FetchStage::Limits {
  Limits(asio::any_io_executor ex, const FetchStageOptions& o)
      : slots(ex, o.ordered ? o.concurrency : 2 * o.concurrency),
        in_flight(ex, o.concurrency),
        hosts(ex, o.per_host),
        tasks(ex),
        emitter_task(ex) {
    if (o.rate > 0) rate.emplace(ex, o.rate, o.burst);
  }
  AsyncSemaphore slots;      // items started and not yet handed downstream
  AsyncSemaphore in_flight;  // transfers running
  KeyedLimiter hosts;
  std::optional<RateLimiter> rate;
  TaskGroup tasks;
  TaskGroup emitter_task;
  std::optional<ResultEmitter> emitter;
  std::mt19937_64 rng{std::random_device{}()};
};

namespace {

/// Holds one permit of a semaphore until released or destroyed.
struct Permit {
  AsyncSemaphore& sem;
  bool held = true;
  void release() {
    if (held) sem.release();
    held = false;
  }
  ~Permit() { release(); }
};

/// Holds one per-host permit until released or destroyed.
struct HostPermit {
  KeyedLimiter& limiter;
  const std::string& key;
  bool held = true;
  void release() {
    if (held) limiter.release(key);
    held = false;
  }
  ~HostPermit() { release(); }
};


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

FetchStage::FetchStage(StageContext& ctx, FetchStageOptions options, HttpClient& client, BodyStore* store,
                       ResumeFilter* filter, FetchStats& stats)
    : ctx_(ctx),
      options_(std::move(options)),
      client_(client),
      store_(store),
      filter_(filter),
      stats_(stats),
      limits_(std::make_unique<Limits>(ctx.io.get_executor(), options_)) {}

FetchStage::~FetchStage() = default;

asio::awaitable<void> FetchStage::run(BatchChannel& in, BatchChannel& out) {
  auto& L = *limits_;
  size_t flush_at = std::min(options_.batch_size, std::max<size_t>(1, L.slots.permits() / 2));
  L.emitter.emplace(ctx_.io.get_executor(), out, L.slots, options_.ordered, flush_at, options_.linger);
  L.emitter_task.spawn(L.emitter->run());

  std::exception_ptr error;
  try {
    co_await dispatch(in);
  } catch (...) {
    error = std::current_exception();
    ctx_.control.request_abort();
  }
  co_await L.tasks.wait_all();
  L.emitter->finish();
  co_await L.emitter_task.wait_all();
  if (!error) error = L.tasks.first_error();
  if (!error) error = L.emitter_task.first_error();
  if (!error) error = L.emitter->error();
  if (error) std::rethrow_exception(error);
}

asio::awaitable<std::vector<std::shared_ptr<FetchStage::Item>>> FetchStage::prepare(Batch& batch) {
  std::vector<std::shared_ptr<Item>> items;
  items.reserve(batch.size());
  std::vector<std::string> keys;
  std::vector<size_t> key_items;
  for (auto& record : batch) {
    LineKind kind = LineKind::request;
    std::string error;
    std::optional<ParsedRequest> parsed;
    if (record.outcome == Outcome::input_error)
      error = "line longer than the --max-line limit";
    else
      parsed = parse_request_line(record.data, options_.defaults, kind, error);
    if (kind == LineKind::skip) continue;
    auto item = std::make_shared<Item>();
    if (parsed) {
      item->request = std::move(parsed);
      item->record.key = item->request->key;
      keys.push_back(item->request->key);
      key_items.push_back(items.size());
    } else {
      const std::string& name = ctx_.input_names.at(record.pos.source);
      spdlog::error("{}:{}: {}", name, record.pos.line, error);
      item->record.data = input_error_json(record.data, name, record.pos.line, error);
      item->record.outcome = Outcome::input_error;
      ++stats_.input_errors;
    }
    item->record.pos = record.pos;
    items.push_back(std::move(item));
  }
  stats_.read += items.size();
  if (filter_ && !keys.empty()) {
    std::vector<char> done = co_await filter_->already_done(std::move(keys));
    size_t skipped = 0;
    for (size_t k = 0; k < done.size(); ++k) {
      if (done[k]) {
        items[key_items[k]].reset();
        ++skipped;
      }
    }
    if (skipped) {
      stats_.skipped_done += skipped;
      std::erase(items, nullptr);
    }
  }
  co_return items;
}

asio::awaitable<void> FetchStage::dispatch(BatchChannel& in) {
  auto& L = *limits_;
  for (;;) {
    Batch batch = co_await receive_batch(in);
    if (batch.empty()) break;
    if (ctx_.control.stopping()) continue;  // drain the source without starting anything
    auto items = co_await prepare(batch);
    for (auto& item : items) {
      if (ctx_.control.stopping()) break;
      co_await L.slots.acquire();
      if (ctx_.control.stopping()) {
        L.slots.release();
        break;
      }
      uint64_t seq = next_seq_++;
      if (!item->request) {
        L.emitter->push(seq, std::move(item->record));
        continue;
      }
      L.tasks.spawn(fetch_guarded(std::move(item), seq));
    }
  }
}

asio::awaitable<void> FetchStage::fetch_guarded(std::shared_ptr<Item> item, uint64_t seq) {
  auto& L = *limits_;
  std::exception_ptr error;
  try {
    co_await fetch_one(std::move(item), seq);
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    // A bug or a resource failure, not a per-URL outcome: stop the run, and still
    // hand in the sequence number so an ordered emitter is not left waiting.
    ctx_.control.request_abort();
    L.emitter->push(seq, std::nullopt);
    std::rethrow_exception(error);
  }
}

void FetchStage::count_response(const HttpResponse& resp) {
  if (resp.status >= 100 && resp.status < 600)
    ++stats_.by_class[static_cast<size_t>(resp.status / 100)];
  else
    ++stats_.by_class[0];
  stats_.latency.add(resp.total_ms);
}

asio::awaitable<void> FetchStage::fetch_one(std::shared_ptr<Item> item, uint64_t seq) {
  auto& L = *limits_;
  auto& control = ctx_.control;
  const ParsedRequest& req = *item->request;
  const std::string host = req.url.host_key();

  std::unique_ptr<BodyStore::File> file;
  MemoryBody memory;
  std::optional<TeeBody> tee;
  BodyConsumer* consumer = nullptr;
  std::string setup_error;
  if (store_) {
    try {
      file = co_await retry_fd_shortage<std::unique_ptr<BodyStore::File>>(ctx_.io, [this] { return store_->open(); });
    } catch (const std::exception& e) {
      setup_error = std::string("saving body: ") + e.what();
    }
  }
  bool want_memory = options_.body_mode != BodyMode::none;
  if (file && want_memory) {
    tee.emplace(*file, memory);
    consumer = &*tee;
  } else if (file) {
    consumer = file.get();
  } else if (want_memory) {
    consumer = &memory;
  }

  HttpResponse resp;
  int attempts = 0;
  std::string give_up;
  bool dropped = false;
  while (setup_error.empty()) {
    // The rate token first, so no permit is held while waiting for it; every wait
    // here gives way to an abort (deadline, second signal).
    if (L.rate) co_await (L.rate->acquire() || control.wait_abort());
    if (control.aborted()) {
      dropped = true;
      break;
    }
    co_await L.hosts.acquire(host);
    HostPermit host_permit{L.hosts, host};
    co_await L.in_flight.acquire();
    Permit flight_permit{L.in_flight};
    // After a stop, only work already on the wire finishes; a first attempt that
    // has not started yet is left for the next run.
    if (control.aborted() || (attempts == 0 && control.stopping())) {
      dropped = true;
      break;
    }
    if (file) co_await file->settle();
    ++stats_.in_flight;
    resp = co_await client_.perform(req.request, consumer);
    --stats_.in_flight;
    if (resp.aborted) {
      dropped = true;
      break;
    }
    ++attempts;
    count_response(resp);
    if (!is_retryable(resp) || attempts > options_.retry.max_retries) break;
    std::optional<std::chrono::milliseconds> delay =
        resp.retry_after_s >= 0 ? retry_after_delay(options_.retry, attempts, resp.retry_after_s, L.rng)
                                : backoff_delay(options_.retry, attempts, L.rng);
    if (!delay) {
      give_up = "server asked to retry after " + std::to_string(resp.retry_after_s) +
                " s, longer than the backoff maximum (" + std::to_string(options_.retry.max_backoff.count()) +
                " ms)";
      break;
    }
    ++stats_.retries;
    flight_permit.release();  // nobody waits for a slot while we back off
    host_permit.release();
    asio::steady_timer sleep(ctx_.io, *delay);
    co_await (sleep.async_wait(asio::use_awaitable) || control.wait_abort());
    if (control.aborted()) {
      dropped = true;
      break;
    }
  }

  if (dropped) {
    if (file) co_await file->discard();
    ++stats_.aborted;
    L.emitter->push(seq, std::nullopt);
    co_return;
  }

  FetchResult result;
  result.request = &req;
  result.response = &resp;
  result.attempts = attempts;
  result.insecure = options_.insecure;
  result.body_mode = options_.body_mode;
  result.ok = setup_error.empty() && resp.curl_code == 0 && resp.status >= 200 && resp.status <= 299;
  if (!setup_error.empty())
    result.error = setup_error;
  else if (resp.curl_code != 0)
    result.error = resp.error;
  else if (!result.ok)
    result.error = "HTTP " + std::to_string(resp.status);
  if (!give_up.empty()) result.error += "; " + give_up;
  if (want_memory && resp.curl_code == 0 && setup_error.empty()) result.body = &memory.data;
  check_json_body(result);
  bool save_failed = file && file->failed();  // the disk's trouble, not the URL's: a rerun tries again
  if (file) {
    if (result.ok) {
      try {
        auto commit = [&] { return file->commit(req.url, req.key); };
        result.path = co_await retry_fd_shortage<std::string>(ctx_.io, commit);
      } catch (const std::exception& e) {
        result.ok = false;
        result.error = std::string("saving body: ") + e.what();
        save_failed = true;
      }
    }
    if (!result.path) co_await file->discard();
  }

  Record out;
  out.data = fetch_result_json(result);
  out.pos = item->record.pos;
  out.key = std::move(item->record.key);
  out.outcome = setup_error.empty() && !save_failed ? outcome_of(result.ok, resp) : Outcome::failed_retry;
  ++stats_.done;
  result.ok ? ++stats_.ok : ++stats_.failed;
  stats_.bytes += static_cast<uint64_t>(resp.bytes);
  L.emitter->push(seq, std::move(out));
}

}  // namespace aetl
