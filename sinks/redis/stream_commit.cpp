#include "sinks/redis/stream_commit.h"

#include <unistd.h>

#include <random>

#include <fmt/format.h>

namespace aetl {

using redis::RedisCommand;
using redis::RedisError;
using redis::RedisReply;

namespace {

// KEYS: the stream, the checkpoint hash. ARGV: field, maxlen ('' none), the
// expected token ('' none stored), this batch's token (the same on every attempt
// at it), the checkpoint, then the records.
constexpr const char* kCommitScript = R"lua(#!lua
local cur = redis.call('HGET', KEYS[2], 'token')
if cur and cur == ARGV[4] then return 'landed' end
if (cur or '') ~= ARGV[3] then return 'taken' end
for i = 6, #ARGV do
  if ARGV[2] ~= '' then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', ARGV[1], ARGV[i])
  else
    redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
  end
end
redis.call('HSET', KEYS[2], 'checkpoint', ARGV[5], 'token', ARGV[4])
return 'ok'
)lua";

// KEYS: the stream, the IDs' sorted set. ARGV: field, maxlen ('' none), now (s),
// forget IDs scored before this (at most 1000 a call, so no call blocks the
// server long), then (ID, record) pairs. Returns per record 1 (added) or 0 (its
// ID was kept: left out).
constexpr const char* kAddNewScript = R"lua(#!lua
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4], 'LIMIT', 0, 1000)
if #old > 0 then redis.call('ZREM', KEYS[2], unpack(old)) end
local added = {}
for i = 5, #ARGV, 2 do
  if ARGV[i] == '' or redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[i]) == 1 then
    if ARGV[2] ~= '' then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', ARGV[1], ARGV[i + 1])
    else
      redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i + 1])
    end
    added[#added + 1] = 1
  else
    added[#added + 1] = 0
  end
end
return added
)lua";

void check(const RedisReply& r, const std::string& what) {
  if (!r.is_error()) return;
  throw RedisError(what + ": " + r.str,
                   redis::is_transient_error(r) ? RedisError::Kind::connection : RedisError::Kind::reply);
}

}  // namespace

StreamCommit::StreamCommit(std::string stream, std::string field, std::string maxlen, const std::string& pipeline)
    : stream_(std::move(stream)),
      field_(std::move(field)),
      maxlen_(std::move(maxlen)),
      checkpoint_key_("aetl:checkpoint:" + pipeline),
      deliveries_key_("aetl:deliveries:" + pipeline) {}

asio::awaitable<std::optional<std::string>> StreamCommit::read_checkpoint(redis::RedisConnection& c,
                                                                          std::chrono::milliseconds timeout) {
  RedisCommand get{std::string_view("HMGET"), std::string_view(checkpoint_key_), std::string_view("checkpoint"),
                   std::string_view("token")};
  RedisReply r = co_await c.command(get, timeout);
  check(r, "HMGET " + checkpoint_key_);
  if (r.elements.size() != 2 || r.elements[0].is_nil()) co_return std::nullopt;
  expected_ = r.elements[1].str;
  co_return r.elements[0].str;
}

asio::awaitable<StreamCommit::Outcome> StreamCommit::commit(redis::RedisConnection& c, const Batch& batch,
                                                            const std::string& checkpoint,
                                                            std::chrono::milliseconds timeout) {
  // Every attempt at one batch carries the same token: an attempt that finds it
  // stored knows an earlier one landed, however many replies were lost.
  if (attempt_.empty()) {
    std::random_device rd;
    attempt_ = fmt::format("{}-{:08x}{:08x}-{}", ::getpid(), rd(), rd(), ++tokens_);
  }
  std::string token = attempt_;  // the command holds views: its strings stay put until the reply
  std::string expected = expected_.value_or("");
  RedisCommand eval{"EVAL", kCommitScript, "2", stream_, checkpoint_key_, field_, maxlen_, expected, token, checkpoint};
  eval.reserve(eval.size() + batch.size());
  for (const auto& r : batch) eval.push_back(r.data);
  RedisReply reply = co_await c.command(eval, timeout + std::chrono::milliseconds(batch.size() / 100));
  check(reply, "redis " + stream_ + ": the commit script");
  if (reply.str == "taken") {
    attempt_.clear();
    co_return Outcome::taken_over;
  }
  if (reply.str == "landed") {
    expected_ = token;
    attempt_.clear();
    co_return Outcome::landed_before;
  }
  expected_ = token;
  attempt_.clear();
  co_return Outcome::committed;
}

asio::awaitable<std::vector<size_t>> StreamCommit::add_new(redis::RedisConnection& c, const Batch& batch,
                                                           const std::vector<std::string>& ids,
                                                           std::chrono::seconds remember,
                                                           std::chrono::milliseconds timeout) {
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  std::string now = std::to_string(now_s.count());
  std::string forget_before = std::to_string((now_s - remember).count());
  RedisCommand eval{"EVAL", kAddNewScript, "2", stream_, deliveries_key_, field_, maxlen_, now, forget_before};
  eval.reserve(eval.size() + 2 * batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    eval.push_back(ids[i]);
    eval.push_back(batch[i].data);
  }
  RedisReply reply = co_await c.command(eval, timeout + std::chrono::milliseconds(batch.size() / 100));
  check(reply, "redis " + stream_ + ": the add script");
  std::vector<size_t> left_out;
  for (size_t i = 0; i < reply.elements.size() && i < batch.size(); ++i)
    if (reply.elements[i].integer == 0) left_out.push_back(i);
  co_return left_out;
}

}  // namespace aetl
