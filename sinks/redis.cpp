// The `redis` sink: each record becomes an entry of a Redis stream (XADD), a
// batch at a time in one pipelined round trip, on the event loop.
//   sink:
//     redis: {url: "redis://localhost:6379/0", stream: jobs}
// An entry holds the record's JSON in one field (`field`, default "data"), which
// is what the `redis` source reads back. At-least-once: a batch is acknowledged
// once the server has answered every XADD of it; a batch retried after a lost
// connection may add some entries twice (their records are the same). With
// `exactly_once: true` a batch is added by one script with the checkpoint (or,
// from a queue source, with its delivery IDs): sinks/redis/stream_commit.h.
#include <exception>
#include <memory>
#include <string>

#include "config/kinds.h"
#include "config/redis_url_field.h"
#include "sinks/redis.h"
#include "engine/setup_error.h"
#include "net/redis/redis_connection.h"
#include "run/pipeline_sink.h"
#include "run/run_context.h"
#include "sinks/redis/stream_commit.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace aetl {
namespace {

using redis::RedisCommand;
using redis::RedisConnection;
using redis::RedisError;
using redis::RedisReply;


class RedisSink final : public PipelineSink {
 public:
  RedisSink(RunContext& run, const RedisSinkConfig& cfg, const SinkIdentity& id)
      : run_(run),
        cfg_(cfg),
        maxlen_(cfg.maxlen ? std::to_string(cfg.maxlen) : std::string()),
        commits_(cfg.stream, cfg.field, maxlen_, id.checkpoint_name) {}

  bool exactly_once() const override { return cfg_.exactly_once; }

  std::optional<std::string> stored_checkpoint() override {
    if (!cfg_.exactly_once || run_.queue_source) return std::nullopt;
    // Before the run's loop starts: a connection of its own, on a loop of its own.
    asio::io_context io;
    std::optional<std::string> found;
    std::exception_ptr error;
    auto read = [&]() -> asio::awaitable<void> {
      try {
        auto c = co_await RedisConnection::connect(io.get_executor(), cfg_.url, cfg_.timeout);
        found = co_await commits_.read_checkpoint(*c, cfg_.timeout);
        c->close();
      } catch (const RedisError& e) {
        error = std::make_exception_ptr(SetupError("redis " + cfg_.url.where() + " (the checkpoint): " + e.what()));
      } catch (...) {
        error = std::current_exception();
      }
    };
    asio::co_spawn(io, read(), asio::detached);
    io.run();
    if (error) std::rethrow_exception(error);
    return found;
  }

  asio::awaitable<void> store_checkpoint(std::string checkpoint) override {
    if (!cfg_.exactly_once) co_return;
    Batch none;
    WriteContext wc;
    wc.checkpoint_after = [&checkpoint](const std::vector<std::pair<size_t, std::string>>&) { return checkpoint; };
    co_await write(none, wc);
  }

  asio::awaitable<void> open(const Checkpoint*, const std::string&) override {
    // Before the run starts: a wrong URL, password or key type is exit 2, at once.
    std::exception_ptr error;
    try {
      conn_ = co_await RedisConnection::connect(run_.stage.io.get_executor(), cfg_.url, cfg_.timeout);
      RedisCommand type{std::string_view("TYPE"), std::string_view(cfg_.stream)};
      RedisReply t = co_await conn_->command(type, cfg_.timeout);
      redis::expect_ok(t, "redis " + cfg_.url.where() + ": TYPE " + cfg_.stream);
      if (t.str != "stream" && t.str != "none")
        throw RedisError("redis " + cfg_.url.where() + ": key '" + cfg_.stream + "' holds a " + t.str + ", not a stream",
                         RedisError::Kind::reply);
    } catch (const RedisError& e) {
      error = std::make_exception_ptr(SetupError(e.what()));
    }
    if (error) std::rethrow_exception(error);
  }

  asio::awaitable<bool> write(const Batch& batch, WriteContext& wc) override {
    std::exception_ptr error;
    try {
      if (!conn_ || conn_->broken())  // lost in an earlier write: the driver's retry brings us here again
        conn_ = co_await RedisConnection::connect(run_.stage.io.get_executor(), cfg_.url, cfg_.timeout);
      if (cfg_.exactly_once) {
        co_await write_exactly_once(batch, wc);
        co_return true;
      }
      commands_.clear();
      commands_.reserve(batch.size());
      for (const auto& r : batch) {
        RedisCommand& c = commands_.emplace_back();
        c.reserve(8);
        c.push_back("XADD");
        c.push_back(cfg_.stream);
        if (!maxlen_.empty()) {
          c.push_back("MAXLEN");
          c.push_back("~");
          c.push_back(maxlen_);
        }
        c.push_back("*");
        c.push_back(cfg_.field);
        c.push_back(r.data);
      }
      // Each command's own deadline, and a little more for a big batch.
      auto timeout = cfg_.timeout + std::chrono::milliseconds(batch.size() / 100);
      std::vector<RedisReply> replies = co_await conn_->pipeline(commands_, timeout);
      for (const auto& reply : replies)
        if (reply.is_error())
          throw RedisError("redis " + cfg_.url.where() + ": XADD " + cfg_.stream + ": " + reply.str,
                           redis::is_transient_error(reply) ? RedisError::Kind::connection : RedisError::Kind::reply);
    } catch (const RedisError& e) {
      // A lost connection is retried (with the sink's backoff, on a new one); an
      // error reply (the key changed type, the server is out of memory) ends the run.
      bool transient = e.kind == RedisError::Kind::connection || e.kind == RedisError::Kind::auth;
      if (transient && conn_) conn_.reset();
      // The message names the server; the driver's retry warnings put describe()
      // (the stream) before it, and the last error is the message alone.
      error = std::make_exception_ptr(SinkError(e.what(), transient));
    }
    if (error) std::rethrow_exception(error);
    co_return true;
  }

  /// One script per batch: with delivery IDs (a queue source) or with the checkpoint.
  asio::awaitable<void> write_exactly_once(const Batch& batch, WriteContext& wc) {
    if (!wc.delivery_ids.empty()) {
      auto remember = std::chrono::duration_cast<std::chrono::seconds>(cfg_.remember_deliveries);
      wc.redelivered = co_await commits_.add_new(*conn_, batch, wc.delivery_ids, remember, cfg_.timeout);
      co_return;
    }
    if (!wc.checkpoint_after) throw std::logic_error("redis sink: exactly once with neither checkpoint nor IDs");
    std::string checkpoint = wc.checkpoint_after(wc.rejected);
    auto outcome = co_await commits_.commit(*conn_, batch, checkpoint, cfg_.timeout);
    if (outcome == StreamCommit::Outcome::taken_over)
      throw CheckpointTakenOver(taken_over_message(describe(), run_.pipeline_name));
  }

  asio::awaitable<void> close() override {
    conn_.reset();
    co_return;
  }
  std::string describe() const override { return "redis stream " + cfg_.stream; }

 private:
  RunContext& run_;
  RedisSinkConfig cfg_;
  std::string maxlen_;
  std::unique_ptr<RedisConnection> conn_;
  std::vector<RedisCommand> commands_;  // views into the batch's records, for one write
  StreamCommit commits_;                // exactly once
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    kRedisUrlField,
    {"stream", FieldType::string, "required", "the stream's key; created by the first XADD", "jobs"},
    {"field", FieldType::string, "data", "the entry field that holds the record's JSON", "payload"},
    {"maxlen", FieldType::integer, "", "trim the stream to about this many entries (MAXLEN ~): removes entries "
     "still pending in a consumer group too", "1000000"},
    {"timeout", FieldType::duration, "5s", "how long connecting and each batch's replies may take", "10s"},
    {"exactly_once", FieldType::boolean, "false",
     "add each batch with the checkpoint (or, from a queue source, its entries' IDs) in one atomic script", "true"},
    {"remember_deliveries", FieldType::duration, "1d",
     "with exactly_once from a queue source: how long the IDs added are kept (in the server's memory, about 100 "
     "bytes each); a worker paused longer could add its entries twice", "6h"},
};
const std::string_view kExamples[] = {
    "{url: \"redis://127.0.0.1:6379/0\", stream: jobs}",
    "{url: \"unix:/run/redis/redis-server.sock?db=2\", stream: results, field: payload, maxlen: 1000000, timeout: 10s, "
    "exactly_once: true, remember_deliveries: 6h}",
};
const FieldDefault kCommonDefaults[] = {
    {"batch.size", "1000"}, {"batch.linger", "100ms"}, {"retry.max", "10"}, {"retry.backoff", "200ms..5s"}};
}  // namespace
extern const KindFields redis_sink_fields{kFields, kExamples, kCommonDefaults};

SinkBuilder parse_redis_sink(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common) {
  auto cfg = std::make_shared<RedisSinkConfig>();
  common.batching.size = 1000;
  common.batching.linger = std::chrono::milliseconds(100);
  // Enough retries to ride out a server restart (about 15 s of backoff in all).
  common.retry = RetryPolicy{10, std::chrono::milliseconds(200), std::chrono::milliseconds(5000)};
  size_t before = problems.size();
  ConfigReader r(node, problems, {kFields, sink_common_fields()});
  if (!r.ok()) return {};
  cfg->url = read_redis_url(r, problems);
  if (auto s = r.string("stream", true)) {
    cfg->stream = s->text;
    if (cfg->stream.empty()) problems.add(s->where, "stream: an empty key");
  }
  if (auto f = r.string("field")) {
    cfg->field = f->text;
    if (cfg->field.empty()) problems.add(f->where, "field: an empty name");
  }
  if (auto n = r.integer("maxlen", 1, int64_t(1) << 50)) cfg->maxlen = *n;
  if (auto t = r.duration("timeout")) cfg->timeout = *t;
  if (auto e = r.boolean("exactly_once")) cfg->exactly_once = common.exactly_once = *e;
  if (auto d = r.duration("remember_deliveries")) cfg->remember_deliveries = std::max(*d, std::chrono::milliseconds(1000));
  read_sink_common(r, common);
  r.finish();
  if (problems.size() != before) return {};
  return redis_sink(*cfg);
}

SinkBuilder redis_sink(const RedisSinkConfig& cfg) {
  return [cfg](RunContext& run, const SinkIdentity& id) -> std::unique_ptr<PipelineSink> {
    return std::make_unique<RedisSink>(run, cfg, id);
  };
}

}  // namespace aetl
