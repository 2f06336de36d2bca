#include "commands/queue_command.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/duration.h"
#include "engine/json_writer.h"
#include "engine/setup_error.h"
#include "net/redis/redis_connection.h"
#include "net/redis/redis_url.h"
#include "net/redis/stream_state.h"

namespace aetl {
namespace {

using redis::StreamState;

struct QueueFlags {
  std::string stream;
  std::string redis = "redis://127.0.0.1:6379/0";
  std::string dead_letter;
  bool json = false;
  std::string timeout = "5s";
};

/// "850 ms", "12.3 s", "4.2 min", "3.1 h", "2.0 d".
std::string human_ms(int64_t ms) {
  if (ms < 1000) return fmt::format("{} ms", ms);
  double s = ms / 1000.0;
  if (s < 60) return fmt::format("{:.1f} s", s);
  if (s < 3600) return fmt::format("{:.1f} min", s / 60);
  if (s < 86400) return fmt::format("{:.1f} h", s / 3600);
  return fmt::format("{:.1f} d", s / 86400);
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string as_text(const StreamState& s) {
  std::string out = fmt::format("stream {}: {} entr{}", s.stream, s.length, s.length == 1 ? "y" : "ies");
  if (!s.first_id.empty()) out += fmt::format(", first {}, last {}", s.first_id, s.last_id);
  out += "\n";
  if (!s.dead_letter.empty())
    out += s.dead_letter_length ? fmt::format("dead letters: {} in {}\n", *s.dead_letter_length, s.dead_letter)
                                : fmt::format("dead letters: none ({} does not exist)\n", s.dead_letter);
  if (s.groups.empty()) out += "no consumer groups\n";
  for (const auto& g : s.groups) {
    out += fmt::format("group {}: {} pending, lag {}, last delivered {}, {} consumer{}\n", g.name, g.pending,
                       g.lag ? std::to_string(*g.lag) : std::string("unknown"), g.last_delivered_id, g.consumers.size(),
                       g.consumers.size() == 1 ? "" : "s");
    if (g.oldest_pending) {
      const auto& p = *g.oldest_pending;
      out += fmt::format("  oldest pending {}: {} old, held by {} (idle {}), delivered {} time{}\n", p.id,
                         human_ms(p.age_ms), p.consumer, human_ms(p.idle_ms), p.deliveries, p.deliveries == 1 ? "" : "s");
    }
    for (const auto& c : g.consumers)
      out += fmt::format("  consumer {}: {} pending, idle {}\n", c.name, c.pending, human_ms(c.idle_ms));
  }
  return out;
}

std::string as_json(const StreamState& s) {
  std::string out = "{\"stream\":" + json_string(s.stream) + ",\"length\":" + std::to_string(s.length);
  out += ",\"first_id\":" + (s.first_id.empty() ? std::string("null") : json_string(s.first_id));
  out += ",\"last_id\":" + (s.last_id.empty() ? std::string("null") : json_string(s.last_id));
  if (!s.dead_letter.empty())
    out += ",\"dead_letter\":{\"stream\":" + json_string(s.dead_letter) + ",\"length\":" +
           (s.dead_letter_length ? std::to_string(*s.dead_letter_length) : std::string("null")) + "}";
  out += ",\"groups\":[";
  for (size_t i = 0; i < s.groups.size(); ++i) {
    const auto& g = s.groups[i];
    if (i) out += ',';
    out += "{\"name\":" + json_string(g.name) + ",\"pending\":" + std::to_string(g.pending) +
           ",\"lag\":" + (g.lag ? std::to_string(*g.lag) : std::string("null")) +
           ",\"last_delivered_id\":" + json_string(g.last_delivered_id) + ",\"oldest_pending\":";
    if (g.oldest_pending) {
      const auto& p = *g.oldest_pending;
      out += "{\"id\":" + json_string(p.id) + ",\"consumer\":" + json_string(p.consumer) +
             ",\"age_ms\":" + std::to_string(p.age_ms) + ",\"idle_ms\":" + std::to_string(p.idle_ms) +
             ",\"deliveries\":" + std::to_string(p.deliveries) + "}";
    } else {
      out += "null";
    }
    out += ",\"consumers\":[";
    for (size_t k = 0; k < g.consumers.size(); ++k) {
      const auto& c = g.consumers[k];
      if (k) out += ',';
      out += "{\"name\":" + json_string(c.name) + ",\"pending\":" + std::to_string(c.pending) +
             ",\"idle_ms\":" + std::to_string(c.idle_ms) + "}";
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

ExitCode run_queue(const QueueFlags& f) {
  redis::RedisUrl url;
  try {
    url = redis::parse_redis_url(f.redis);
  } catch (const std::invalid_argument& e) {
    throw SetupError(std::string("--redis: ") + e.what());
  }
  auto timeout = parse_duration(f.timeout);
  if (!timeout) throw SetupError("--timeout: invalid duration '" + f.timeout + "' (examples: 250ms, 10s, 2m)");
  asio::io_context io;
  std::optional<StreamState> state;
  std::exception_ptr error;
  auto task = [&]() -> asio::awaitable<void> {
    try {
      auto c = co_await redis::RedisConnection::connect(io.get_executor(), url, *timeout);
      state = co_await redis::read_stream_state(*c, f.stream, f.dead_letter, *timeout);
      c->close();
    } catch (...) {
      error = std::current_exception();
    }
  };
  asio::co_spawn(io, task(), asio::detached);
  io.run();
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const redis::RedisError& e) {
      std::string msg = e.what();
      if (e.kind == redis::RedisError::Kind::reply && msg.rfind("no stream '", 0) == 0) {
        spdlog::error("{}: {}", url.where(), msg);
        return ExitCode::failures;
      }
      if (e.kind == redis::RedisError::Kind::reply) throw SetupError(url.where() + ": " + msg);
      throw SetupError(msg);
    }
  }
  std::string text = f.json ? as_json(*state) : as_text(*state);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return ExitCode::ok;
}

}  // namespace

std::function<ExitCode()> setup_queue_command(CLI::App& app) {
  auto f = std::make_shared<QueueFlags>();
  app.add_option("stream", f->stream, "The stream's key")->required();
  app.add_option("--redis", f->redis, "redis://[user:password@]host[:port][/db] or unix:/path; password also from "
                                      "REDISCLI_AUTH")
      ->capture_default_str();
  app.add_option("--dead-letter", f->dead_letter, "Also count the entries of this dead-letter stream");
  app.add_flag("--json", f->json, "One JSON object instead of text");
  app.add_option("--timeout", f->timeout, "How long connecting and each reply may take")->capture_default_str();
  return [f] { return run_queue(*f); };
}

}  // namespace aetl
