#include "net/redis/stream_state.h"

#include <charconv>

#include "net/redis/redis_connection.h"

namespace aetl::redis {
namespace {

/// A flat [key, value, key, value, ...] reply's value for `key` (nullptr: absent).
const RedisReply* field(const RedisReply& map, std::string_view key) {
  for (size_t i = 0; i + 1 < map.elements.size(); i += 2)
    if (map.elements[i].str == key) return &map.elements[i + 1];
  return nullptr;
}

int64_t integer(const RedisReply* r) { return r && r->type == RedisReply::Type::integer ? r->integer : 0; }
std::string text(const RedisReply* r) { return r && !r->is_nil() ? r->str : std::string(); }

/// The milliseconds part of an entry ID ("1700000000000-3").
int64_t id_time_ms(std::string_view id) {
  int64_t ms = 0;
  std::from_chars(id.data(), id.data() + id.size(), ms);
  return ms;
}

// GCC 12 can destroy a temporary inside a co_await expression twice (a string
// built with +): replies are checked in statements of their own.
void check(const RedisReply& r, const std::string& what) {
  if (r.is_error()) throw RedisError(what + ": " + r.str, RedisError::Kind::reply);
}

}  // namespace

asio::awaitable<StreamState> read_stream_state(RedisConnection& c, const std::string& stream,
                                               const std::string& dead_letter, std::chrono::milliseconds timeout) {
  StreamState s;
  s.stream = stream;
  RedisCommand type{std::string_view("TYPE"), std::string_view(stream)};
  RedisReply t = co_await c.command(type, timeout);
  check(t, "TYPE " + stream);
  if (t.str == "none") throw RedisError("no stream '" + stream + "'", RedisError::Kind::reply);
  if (t.str != "stream") throw RedisError("key '" + stream + "' holds a " + t.str + ", not a stream", RedisError::Kind::reply);

  RedisCommand info{std::string_view("XINFO"), std::string_view("STREAM"), std::string_view(stream)};
  RedisReply si = co_await c.command(info, timeout);
  check(si, "XINFO STREAM " + stream);
  s.length = integer(field(si, "length"));
  if (const RedisReply* first = field(si, "first-entry"); first && !first->elements.empty())
    s.first_id = first->elements[0].str;
  if (const RedisReply* last = field(si, "last-entry"); last && !last->elements.empty()) s.last_id = last->elements[0].str;

  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  RedisCommand groups{std::string_view("XINFO"), std::string_view("GROUPS"), std::string_view(stream)};
  RedisReply gs = co_await c.command(groups, timeout);
  check(gs, "XINFO GROUPS " + stream);
  for (const auto& g : gs.elements) {
    StreamState::Group group;
    group.name = text(field(g, "name"));
    group.pending = integer(field(g, "pending"));
    group.last_delivered_id = text(field(g, "last-delivered-id"));
    if (const RedisReply* lag = field(g, "lag"); lag && lag->type == RedisReply::Type::integer) group.lag = lag->integer;
    RedisCommand consumers{std::string_view("XINFO"), std::string_view("CONSUMERS"), std::string_view(stream),
                           std::string_view(group.name)};
    RedisReply cs = co_await c.command(consumers, timeout);
    check(cs, "XINFO CONSUMERS " + stream + " " + group.name);
    for (const auto& cr : cs.elements)
      group.consumers.push_back({text(field(cr, "name")), integer(field(cr, "pending")), integer(field(cr, "idle"))});
    if (group.pending > 0) {
      RedisCommand oldest{std::string_view("XPENDING"), std::string_view(stream), std::string_view(group.name),
                          std::string_view("-"), std::string_view("+"), std::string_view("1")};
      RedisReply p = co_await c.command(oldest, timeout);
      check(p, "XPENDING " + stream + " " + group.name);
      if (!p.elements.empty() && p.elements[0].elements.size() >= 4) {
        const auto& row = p.elements[0].elements;
        StreamState::Pending pending{row[0].str, row[1].str, row[2].integer, row[3].integer, 0};
        pending.age_ms = std::max<int64_t>(0, now_ms - id_time_ms(pending.id));
        group.oldest_pending = pending;
      }
    }
    s.groups.push_back(std::move(group));
  }

  if (!dead_letter.empty()) {
    s.dead_letter = dead_letter;
    RedisCommand dtype{std::string_view("TYPE"), std::string_view(dead_letter)};
    RedisReply dt = co_await c.command(dtype, timeout);
    check(dt, "TYPE " + dead_letter);
    if (dt.str == "stream") {
      RedisCommand len{std::string_view("XLEN"), std::string_view(dead_letter)};
      RedisReply n = co_await c.command(len, timeout);
      check(n, "XLEN " + dead_letter);
      s.dead_letter_length = n.integer;
    } else if (dt.str != "none") {
      throw RedisError("key '" + dead_letter + "' holds a " + dt.str + ", not a stream", RedisError::Kind::reply);
    }
  }
  co_return s;
}

}  // namespace aetl::redis
