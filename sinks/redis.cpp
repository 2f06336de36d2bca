// The `redis` sink: each record becomes an entry of a Redis stream (XADD), a
// batch at a time in one pipelined round trip, on the event loop.
//   sink:
//     redis: {url: "redis://localhost:6379/0", stream: jobs}
// An entry holds the record's JSON in one field (`field`, default "data"), which
// is what the `redis` source reads back. At-least-once: a batch is acknowledged
// once the server has answered every XADD of it; a batch retried after a lost
// connection may add some entries twice (their records are the same).
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

namespace aetl {
namespace {

using redis::RedisCommand;
using redis::RedisConnection;
using redis::RedisError;
using redis::RedisReply;


class RedisSink final : public PipelineSink {
 public:
  RedisSink(RunContext& run, const RedisSinkConfig& cfg)
      : run_(run), cfg_(cfg), maxlen_(cfg.maxlen ? std::to_string(cfg.maxlen) : std::string()) {}

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

  asio::awaitable<bool> write(const Batch& batch, WriteContext&) override {
    std::exception_ptr error;
    try {
      if (!conn_ || conn_->broken())  // lost in an earlier write: the driver's retry brings us here again
        conn_ = co_await RedisConnection::connect(run_.stage.io.get_executor(), cfg_.url, cfg_.timeout);
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
};
const std::string_view kExamples[] = {
    "{url: \"redis://127.0.0.1:6379/0\", stream: jobs}",
    "{url: \"unix:/run/redis/redis-server.sock?db=2\", stream: results, field: payload, maxlen: 1000000, timeout: 10s}",
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
  read_sink_common(r, common);
  r.finish();
  if (problems.size() != before) return {};
  return redis_sink(*cfg);
}

SinkBuilder redis_sink(const RedisSinkConfig& cfg) {
  return [cfg](RunContext& run) -> std::unique_ptr<PipelineSink> { return std::make_unique<RedisSink>(run, cfg); };
}

}  // namespace aetl
