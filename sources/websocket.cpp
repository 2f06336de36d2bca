// The `websocket` source: the messages of a ws:// or wss:// feed as records.
//   source:
//     websocket:
//       url: "wss://stream.example/feed"
//       send: ['{"op": "subscribe", "channel": "trades"}']    # after each connect
//       max_messages: 100000                                   # or duration:, SIGINT, or never
// Each message becomes one record (sources/websocket/message_record.h) with its
// receive time. A dropped connection is made again with backoff and jitter
// (`reconnect`), and `resubscribe` (or `send`) is sent again. Records are
// numbered on from the checkpoint's last one, so a sink's stored checkpoint
// keeps growing across runs. Delivery: a live feed cannot be replayed, so it is
// at-most-once for the messages received but not yet committed when the process
// dies (man/aetl-pipeline.5 says how many at most); SIGINT and the run's own
// ends (max_messages, duration, the server's close with on_close: end) write
// everything received.
#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "config/kinds.h"
#include "engine/channel.h"
#include "engine/retry.h"
#include "engine/setup_error.h"
#include "engine/shutdown.h"
#include "engine/task_group.h"
#include "engine/wakeup.h"
#include "net/ws/ws_connection.h"
#include "run/checkpoint.h"
#include "run/run_context.h"
#include "sources/websocket/message_record.h"

namespace aetl {
namespace {

using Clock = std::chrono::steady_clock;
using ws::WsError;

struct WsSourceConfig {
  ws::WsOptions ws;
  std::vector<std::string> send;
  std::vector<std::string> resubscribe;
  bool has_resubscribe = false;
  bool end_on_close = false;  // on_close: end
  RetryPolicy reconnect{10, std::chrono::milliseconds(500), std::chrono::milliseconds(30000)};
  uint64_t max_messages = 0;
  std::chrono::milliseconds duration{0};
  size_t batch = 100;
  std::chrono::milliseconds linger{50};
  std::string time_field = "received_at";
  BinaryMessages binary = BinaryMessages::base64;
};

/// A close code after which the connection is made again: the server restarts,
/// is busy, or failed (or the frame had no code). Other codes (protocol errors,
/// policy violations, application codes) end the run.
bool transient_close(int code, bool end_on_close) {
  if (code == 1000 || code == 1001) return !end_on_close;
  return code == 1005 || code == 1006 || code == 1011 || code == 1012 || code == 1013 || code == 1014;
}

class WebSocketSource final : public Source {
 public:
  WebSocketSource(RunContext& run, PartStats& stats, std::shared_ptr<const WsSourceConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)), name_("websocket " + cfg_->ws.url.shown),
        records_(cfg_->time_field, cfg_->binary), ready_(run.stage.io.get_executor()),
        room_(run.stage.io.get_executor()), pause_(run.stage.io.get_executor()) {
    const InputMark* last = nullptr;
    if (run_.resume)
      for (const auto& m : run_.resume->inputs) {
        if (m.name == name_) last = &m;
        else run_.tracker.carry(m);
      }
    if (last) {  // numbered on past every record a run before handled
      seq_ = last->line;
      for (const auto& r : last->done) seq_ = std::max(seq_, r.last);
    }
    run_.tracker.add_input(0, name_, last);
    run_.stage.input_names = {name_};
    limit_ = cfg_->max_messages;
    if (run_.limit && (!limit_ || run_.limit < limit_)) limit_ = run_.limit;
    std::weak_ptr<uint64_t> handled = handled_;
    run_.tracker.on_handled([handled](uint32_t, uint64_t first, uint64_t last) {
      if (auto n = handled.lock()) *n += last - first + 1;
    });
    run_.tracker.on_failed([handled](const Position&) {
      if (auto n = handled.lock()) ++*n;
    });
  }

  asio::awaitable<void> run(BatchChannel& out) override {
    auto ex = run_.stage.io.get_executor();
    // The hooks may fire after this source is gone (a signal while the sink finishes).
    std::weak_ptr<bool> alive = alive_;
    run_.stage.control.on_stop([this, alive] {
      if (alive.lock()) end_reading();
    });
    run_.stage.control.on_abort([this, alive] {
      if (!alive.lock()) return;
      end_reading();
      if (conn_) conn_->abort();
    });
    TaskGroup tasks(ex);
    tasks.spawn(receive());
    if (cfg_->duration.count() > 0) tasks.spawn(end_after(cfg_->duration));
    std::exception_ptr error;
    try {
      co_await forward(out);
    } catch (...) {
      error = std::current_exception();  // the channel was closed: the run is aborting
    }
    forward_done_ = true;
    end_reading();
    if (error && conn_) conn_->abort();
    co_await tasks.wait_all();
    if (error) std::rethrow_exception(error);
    if (tasks.first_error()) std::rethrow_exception(tasks.first_error());
    if (error_) std::rethrow_exception(error_);
    if (!fatal_.empty()) {
      if (!connected_once_) throw SetupError("source websocket: " + cfg_->ws.url.shown + ": " + fatal_);
      // What was received before is written first; then the run fails.
      while (*handled_ < emitted_ && !run_.stage.control.aborted()) {
        asio::steady_timer t(ex, std::chrono::milliseconds(20));
        asio::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      throw std::runtime_error("source websocket: " + cfg_->ws.url.shown + ": " + fatal_);
    }
  }

 private:
  /// Stops reading: the connection is closed politely (the messages before the
  /// server's close frame still come), a reconnect wait ends.
  void end_reading() {
    if (ending_) return;
    ending_ = true;
    if (conn_) conn_->close();
    pause_.notify();
    room_.notify();
    ready_.notify();
  }

  asio::awaitable<void> end_after(std::chrono::milliseconds d) {
    if (reading_done_) co_return;
    asio::steady_timer t(run_.stage.io.get_executor(), d);
    timer_ = &t;
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    timer_ = nullptr;
    if (!ec) {
      spdlog::debug("source websocket: duration {} ms reached", d.count());
      end_reading();
    }
  }

  /// Connects, reads, and connects again after a drop, until the run ends
  /// reading or a failure ends it (fatal_).
  asio::awaitable<void> receive() {
    try {
      co_await connect_and_read();
    } catch (...) {
      error_ = std::current_exception();
    }
    reading_done_ = true;
    if (timer_) timer_->cancel();
    ready_.notify();
  }

  asio::awaitable<void> connect_and_read() {
    auto ex = run_.stage.io.get_executor();
    std::mt19937_64 rng{std::random_device{}()};
    int tries = 0;  // connections in a row that brought no message
    while (!ending_) {
      std::string why;
      WsError::Kind kind = WsError::Kind::connect;
      int code = 0;
      uint64_t before = emitted_;
      try {
        conn_ = std::make_unique<ws::WsConnection>(ex, cfg_->ws);  // reachable by the stop while connecting
        co_await conn_->connect();
      } catch (const WsError& e) {
        why = e.what();
        conn_.reset();
      }
      if (why.empty()) {
        ++stats_.events[connected_once_ ? "reconnected" : "connected"];
        if (connected_once_) spdlog::info("source websocket: {}: connected again", cfg_->ws.url.shown);
        if (ending_) conn_->close();
        const auto& subscribe = connected_once_ && cfg_->has_resubscribe ? cfg_->resubscribe : cfg_->send;
        connected_once_ = true;
        try {
          for (const auto& m : subscribe) co_await conn_->send_text(m);
          co_await read_messages();
        } catch (const WsError& e) {
          why = e.what();
          kind = e.kind;
          code = e.code;
        }
        conn_.reset();
      }
      if (ending_) break;
      if (!connected_once_) {
        fatal_ = why;
        break;
      }
      if (kind == WsError::Kind::too_big || (kind == WsError::Kind::closed && !transient_close(code, cfg_->end_on_close))) {
        if (kind == WsError::Kind::closed && (code == 1000 || code == 1001)) {
          spdlog::info("source websocket: {}: {} (on_close: end)", cfg_->ws.url.shown, why);
          break;
        }
        fatal_ = why;
        break;
      }
      if (emitted_ > before) tries = 0;
      ++tries;
      if (tries > cfg_->reconnect.max_retries) {
        fatal_ = why + " (gave up after " + std::to_string(tries) + " tries to connect again)";
        break;
      }
      auto delay = backoff_delay(cfg_->reconnect, tries, rng);
      spdlog::warn("source websocket: {}: {}; connecting again in {} ms (try {} of {})", cfg_->ws.url.shown, why,
                   delay.count(), tries, cfg_->reconnect.max_retries);
      co_await pause_.wait(Clock::now() + delay);
    }
  }

  /// Reads messages into the queue until the connection ends (always by a WsError).
  asio::awaitable<void> read_messages() {
    for (;;) {
      while (queue_.size() >= cfg_->batch && !forward_done_) co_await room_.wait();
      ws::WsMessage m = co_await conn_->read();
      auto received = std::chrono::system_clock::now();
      // After an abort the read ends with the socket; past the limit, the
      // messages before the server's close frame are not taken.
      if (run_.stage.control.aborted() || forward_done_ || (limit_ && emitted_ >= limit_)) continue;
      Record rec;
      if (!records_.make(m.data, m.binary, received, rec.data)) {
        ++stats_.events["skipped"];
        continue;
      }
      ++seq_;
      rec.pos = Position{0, seq_, seq_};
      if (queue_.empty()) {
        first_at_ = Clock::now();
        queue_.reserve(cfg_->batch);
      }
      queue_.push_back(std::move(rec));
      ++emitted_;
      ++stats_.in;
      ++stats_.out;
      if (queue_.size() == 1 || queue_.size() >= cfg_->batch) ready_.notify();
      if (limit_ && emitted_ >= limit_ && !ending_) {
        spdlog::debug("source websocket: {} messages received (max_messages)", emitted_);
        end_reading();
      }
    }
  }

  /// Sends the queue on as batches: when it holds `batch` records, `linger`
  /// after its first one came, and at the end; then the end marker.
  asio::awaitable<void> forward(BatchChannel& out) {
    for (;;) {
      bool due = !queue_.empty() && (queue_.size() >= cfg_->batch || reading_done_ || ending_at_limit() ||
                                     Clock::now() >= first_at_ + cfg_->linger);
      if (due) {
        Batch b;
        b.swap(queue_);
        room_.notify();
        co_await send_batch(out, std::move(b));
        continue;
      }
      if (reading_done_) break;
      co_await ready_.wait(queue_.empty() ? Clock::time_point::max() : first_at_ + cfg_->linger);
    }
    co_await send_batch(out, Batch{});
  }

  bool ending_at_limit() const { return limit_ && emitted_ >= limit_; }

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const WsSourceConfig> cfg_;
  std::string name_;
  MessageRecords records_;
  std::unique_ptr<ws::WsConnection> conn_;
  Batch queue_;                 // records read, not yet sent on (at most `batch`)
  Clock::time_point first_at_;  // when the queue's first record came
  Wakeup ready_;                // the queue has a first record, is full, or reading ended
  Wakeup room_;                 // the queue was taken
  Wakeup pause_;                // a wait before connecting again ends early
  asio::steady_timer* timer_ = nullptr;  // the duration's, while it runs
  uint64_t seq_ = 0;
  uint64_t limit_ = 0;
  uint64_t emitted_ = 0;
  // Records of this run handled for good or failed (shared with the tracker's hooks).
  std::shared_ptr<uint64_t> handled_ = std::make_shared<uint64_t>(0);
  std::string fatal_;     // why the run fails (empty: it did not)
  std::exception_ptr error_;  // receive() failed otherwise
  bool forward_done_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool connected_once_ = false;
  bool ending_ = false;
  bool reading_done_ = false;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"url", FieldType::string, "required", "the feed: ws:// or wss:// (TLS verified)", "\"wss://stream.example/feed\""},
    {"send", FieldType::list, "", "text messages sent after connecting (a subscribe request)",
     "['{\"op\": \"subscribe\", \"channel\": \"trades\"}']"},
    {"resubscribe", FieldType::list, "", "sent after connecting again instead of send (default: send)",
     "['{\"op\": \"resume\"}']"},
    {"headers", FieldType::map, "", "headers of the upgrade request (never logged)",
     "{Authorization: \"Bearer ${TOKEN}\"}"},
    {"cacert", FieldType::string, "", "wss: a PEM file of CAs trusted instead of the system's",
     "/etc/ssl/certs/ca-certificates.crt"},
    {"insecure", FieldType::boolean, "false", "wss: skip the certificate checks (a warning says so)", "true"},
    {"max_message", FieldType::size, "16MiB", "a longer message ends the run (the connection closes with 1009)",
     "1MiB"},
    {"connect_timeout", FieldType::duration, "10s", "connecting, TLS and the upgrade together; also the close", "5s"},
    {"ping_interval", FieldType::duration, "20s",
     "a ping after this long with nothing received; lost after twice as long (0: never)", "30s"},
    {"reconnect.max", FieldType::integer, "10", "connections in a row that bring no message, then the run fails",
     "100"},
    {"reconnect.backoff", FieldType::duration_range, "500ms..30s", "waits before connecting again (full jitter)",
     "1s..1m"},
    {"on_close", FieldType::choice, "reconnect", "a close by the server with 1000 or 1001: reconnect, or end the run",
     "end"},
    {"max_messages", FieldType::integer, "", "end the run after this many messages (default: never)", "100000"},
    {"duration", FieldType::duration, "", "end the run after this long (default: never)", "1h"},
    {"batch", FieldType::integer, "100", "messages per batch sent on", "500"},
    {"linger", FieldType::duration, "50ms", "how long a partial batch waits for more", "200ms"},
    {"time_field", FieldType::string, "received_at", "the field that gets the receive time (\"\": none)",
     "_received"},
    {"binary", FieldType::choice, "base64", "binary messages: base64 ({\"binary\": ...}), text or skip", "text"},
};
const std::string_view kExamples[] = {
    "{url: \"ws://127.0.0.1:8765/feed\"}",
    "{url: \"wss://stream.example/feed\", send: ['{\"op\": \"subscribe\"}'], resubscribe: ['{\"op\": \"resume\"}'], "
    "headers: {Authorization: \"Bearer x\"}, cacert: /etc/ssl/certs/ca-certificates.crt, insecure: false, "
    "max_message: 1MiB, connect_timeout: 5s, "
    "ping_interval: 30s, reconnect: {max: 100, backoff: 1s..1m}, on_close: end, max_messages: 1000, duration: 1h, "
    "batch: 500, linger: 200ms, time_field: _received, binary: text}",
};
}  // namespace
extern const KindFields websocket_source_fields{kFields, kExamples};

SourceBuilder parse_websocket_source(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) return {};
  auto cfg = std::make_shared<WsSourceConfig>();
  size_t before = problems.size();
  if (auto u = r.string("url", true)) {
    try {
      cfg->ws.url = ws::parse_ws_url(u->text);
    } catch (const std::invalid_argument& e) {
      problems.add(u->where, "url: " + std::string(e.what()));
    }
  }
  auto texts = [](const std::vector<ConfigString>& list) {
    std::vector<std::string> out;
    for (const auto& s : list) out.push_back(s.text);
    return out;
  };
  if (auto s = r.string_list("send")) cfg->send = texts(*s);
  if (auto s = r.string_list("resubscribe")) {
    cfg->resubscribe = texts(*s);
    cfg->has_resubscribe = true;
  }
  if (auto h = r.string_map("headers"))
    for (auto& [k, v] : *h) cfg->ws.headers.emplace_back(k, v.text);
  if (auto c = r.string("cacert")) {
    if (::access(c->text.c_str(), R_OK) != 0) problems.add(c->where, "cacert: " + c->text + ": cannot read");
    cfg->ws.cacert = c->text;
  }
  if (auto b = r.boolean("insecure")) cfg->ws.insecure = *b;
  if (auto n = r.size("max_message")) {
    if (*n < 1) problems.add(r.where(), "max_message: must be at least 1 byte");
    cfg->ws.max_message = static_cast<uint64_t>(std::max<int64_t>(*n, 1));
  }
  if (auto d = r.duration("connect_timeout")) cfg->ws.connect_timeout = std::max(*d, std::chrono::milliseconds(1));
  if (auto d = r.duration("ping_interval")) cfg->ws.ping_interval = *d;
  if (auto p = r.retry("reconnect", cfg->reconnect)) cfg->reconnect = *p;
  if (auto c = r.choice("on_close", {"reconnect", "end"})) cfg->end_on_close = *c == "end";
  if (auto n = r.integer("max_messages", 1, INT64_MAX)) cfg->max_messages = static_cast<uint64_t>(*n);
  if (auto d = r.duration("duration")) cfg->duration = *d;
  if (auto n = r.integer("batch", 1, 100000)) cfg->batch = static_cast<size_t>(*n);
  if (auto d = r.duration("linger")) cfg->linger = *d;
  if (auto t = r.string("time_field")) cfg->time_field = t->text;
  if (auto b = r.choice("binary", {"base64", "text", "skip"}))
    cfg->binary = *b == "text" ? BinaryMessages::text : *b == "skip" ? BinaryMessages::skip : BinaryMessages::base64;
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run) -> std::unique_ptr<Source> {
    if (cfg->ws.insecure && cfg->ws.url.tls)
      spdlog::warn("source websocket: insecure: TLS certificates are not verified");
    return std::make_unique<WebSocketSource>(run, run.add_part("websocket"), cfg);
  };
}

}  // namespace aetl
