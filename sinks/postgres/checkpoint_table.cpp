#include "sinks/postgres/checkpoint_table.h"

#include <unistd.h>

#include <random>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "net/pg/pg_connection.h"

namespace aetl {

using pg::PgConnection;
using Params = std::vector<std::optional<std::string>>;
// GCC 12 can destroy a temporary inside a co_await expression twice (a braced
// list, a string built with + or ?:): statements and parameters are named first.

asio::awaitable<void> PgCheckpointTable::ensure(PgConnection& c) {
  std::string columns =
      "(pipeline text PRIMARY KEY, checkpoint text NOT NULL, batch text NOT NULL DEFAULT '',"
      " updated_at timestamptz NOT NULL DEFAULT now())";
  co_await pg::ensure_table(c, name_, columns);
}

asio::awaitable<std::optional<std::string>> PgCheckpointTable::read(PgConnection& c) {
  co_await c.exec("BEGIN");
  co_await lock(c);  // a killed run's last COMMIT lands (or not) first
  Params params{pipeline_};
  std::string sql = "SELECT checkpoint, batch FROM " + name_ + " WHERE pipeline = $1";
  pg::PgResult r = co_await c.exec_params(sql, params);
  co_await c.exec("COMMIT");
  if (r.rows() == 0) co_return std::nullopt;
  stored_token_ = std::string(r.value(0, 1));
  co_return std::string(r.value(0, 0));
}

asio::awaitable<void> PgCheckpointTable::lock(PgConnection& c) {
  Params params{"aetl:" + pipeline_};
  std::string_view sql = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
  co_await c.exec_params(sql, params);
}

std::string PgCheckpointTable::new_token() {
  std::random_device rd;
  uint64_t r = (uint64_t{rd()} << 32) | rd();
  return fmt::format("{}-{:016x}-{}", ::getpid(), r, ++tokens_);
}

asio::awaitable<bool> PgCheckpointTable::compare_and_set(PgConnection& c, const std::string& checkpoint,
                                                         const std::string& token) {
  if (stored_token_) {
    Params params{pipeline_, checkpoint, token, *stored_token_};
    std::string sql = "UPDATE " + name_ +
                      " SET checkpoint = $2, batch = $3, updated_at = now() WHERE pipeline = $1 AND batch = $4";
    pg::PgResult r = co_await c.exec_params(sql, params);
    co_return r.affected() == 1;
  }
  Params params{pipeline_, checkpoint, token};
  std::string sql = "INSERT INTO " + name_ +
                    " (pipeline, checkpoint, batch) VALUES ($1, $2, $3) ON CONFLICT (pipeline) DO NOTHING";
  pg::PgResult r = co_await c.exec_params(sql, params);
  co_return r.affected() == 1;
}

asio::awaitable<bool> PgCheckpointTable::holds(PgConnection& c, const std::string& token) {
  Params params{pipeline_};
  std::string sql = "SELECT batch FROM " + name_ + " WHERE pipeline = $1";
  pg::PgResult r = co_await c.exec_params(sql, params);
  co_return r.rows() == 1 && r.value(0, 0) == token;
}

}  // namespace aetl
