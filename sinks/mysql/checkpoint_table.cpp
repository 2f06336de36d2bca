#include "sinks/mysql/checkpoint_table.h"

#include <unistd.h>

#include <random>

#include <fmt/format.h>

#include "net/mysql/mysql_connection.h"

namespace aetl {

using mysql::MysqlConnection;
// GCC 12 can destroy a temporary inside a co_await expression twice (a braced
// list, a string built with + or ?:): statements are named first.

std::string MysqlCheckpointTable::where_pipeline() const {
  std::string w = " WHERE pipeline = ";
  mysql::append_quoted(w, pipeline_);
  return w;
}

asio::awaitable<void> MysqlCheckpointTable::ensure(MysqlConnection& c) {
  std::string sql = "CREATE TABLE IF NOT EXISTS " + name_ +
                    " (pipeline VARCHAR(255) NOT NULL PRIMARY KEY, checkpoint LONGTEXT NOT NULL,"
                    " batch VARCHAR(64) NOT NULL DEFAULT '', updated_at TIMESTAMP(6) NOT NULL DEFAULT"
                    " CURRENT_TIMESTAMP(6)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
  co_await c.exec(sql);
}

asio::awaitable<std::optional<std::string>> MysqlCheckpointTable::read(MysqlConnection& c) {
  co_await c.exec("START TRANSACTION");
  std::string sql = "SELECT checkpoint, batch FROM " + name_ + where_pipeline() + " FOR UPDATE";
  mysql::MysqlRows r = co_await c.query(sql);
  co_await c.exec("COMMIT");
  if (r.rows.empty() || !r.rows[0][0]) co_return std::nullopt;
  stored_token_ = r.rows[0][1].value_or("");
  co_return *r.rows[0][0];
}

asio::awaitable<void> MysqlCheckpointTable::lock(MysqlConnection& c) {
  std::string sql = "SELECT batch FROM " + name_ + where_pipeline() + " FOR UPDATE";
  co_await c.query(sql);
}

std::string MysqlCheckpointTable::new_token() {
  std::random_device rd;
  uint64_t r = (uint64_t{rd()} << 32) | rd();
  return fmt::format("{}-{:016x}-{}", ::getpid(), r, ++tokens_);
}

asio::awaitable<bool> MysqlCheckpointTable::compare_and_set(MysqlConnection& c, const std::string& checkpoint,
                                                            const std::string& token) {
  std::string sql;
  if (stored_token_) {
    sql = "UPDATE " + name_ + " SET checkpoint = ";
    mysql::append_quoted(sql, checkpoint);
    sql += ", batch = ";
    mysql::append_quoted(sql, token);
    sql += ", updated_at = CURRENT_TIMESTAMP(6)" + where_pipeline() + " AND batch = ";
    mysql::append_quoted(sql, *stored_token_);
  } else {
    // A row there already (another run's) leaves this one's insert a no-op: 0 rows.
    sql = "INSERT INTO " + name_ + " (pipeline, checkpoint, batch) VALUES (";
    mysql::append_quoted(sql, pipeline_);
    sql += ", ";
    mysql::append_quoted(sql, checkpoint);
    sql += ", ";
    mysql::append_quoted(sql, token);
    sql += ") ON DUPLICATE KEY UPDATE pipeline = pipeline";
  }
  uint64_t n = co_await c.exec(sql);
  co_return n == 1;
}

asio::awaitable<bool> MysqlCheckpointTable::holds(MysqlConnection& c, const std::string& token) {
  std::string sql = "SELECT batch FROM " + name_ + where_pipeline();
  mysql::MysqlRows r = co_await c.query(sql);
  co_return r.rows.size() == 1 && r.rows[0][0] == token;
}

}  // namespace aetl
