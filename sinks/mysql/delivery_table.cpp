#include "sinks/mysql/delivery_table.h"

#include <string_view>
#include <unordered_set>

#include "net/mysql/mysql_connection.h"
#include "sinks/sql/delivery_ids.h"

namespace aetl {

using mysql::MysqlConnection;
// GCC 12 can destroy a temporary inside a co_await expression twice (a braced
// list, a string built with + or ?:): statements are named first.

namespace {
/// IDs per statement: well under max_allowed_packet, few round trips.
constexpr size_t kIdsPerStatement = 5000;
}  // namespace

asio::awaitable<void> MysqlDeliveryTable::ensure(MysqlConnection& c) {
  std::string sql = "CREATE TABLE IF NOT EXISTS " + name_ +
                    " (pipeline VARCHAR(255) NOT NULL, id VARCHAR(255) NOT NULL, committed_at TIMESTAMP(6) NOT NULL"
                    " DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (pipeline, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
                    " COLLATE=utf8mb4_bin";
  co_await c.exec(sql);
}

asio::awaitable<std::vector<bool>> MysqlDeliveryTable::find(MysqlConnection& c, const std::vector<std::string>& ids) {
  std::unordered_set<std::string> found;
  for (size_t from = 0; from < ids.size(); from += kIdsPerStatement) {
    std::string sql = "SELECT id FROM " + name_ + " WHERE pipeline = ";
    mysql::append_quoted(sql, pipeline_);
    sql += " AND id IN (";
    bool any = false;
    for (size_t i = from; i < std::min(ids.size(), from + kIdsPerStatement); ++i) {
      if (ids[i].empty()) continue;
      if (any) sql += ',';
      mysql::append_quoted(sql, ids[i]);
      any = true;
    }
    if (!any) continue;
    sql += ")";
    mysql::MysqlRows r = co_await c.query(sql);
    for (auto& row : r.rows)
      if (row[0]) found.insert(std::move(*row[0]));
  }
  std::vector<bool> kept(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) kept[i] = !ids[i].empty() && found.count(ids[i]) > 0;
  co_return kept;
}

asio::awaitable<bool> MysqlDeliveryTable::keep(MysqlConnection& c, const std::vector<std::string>& ids,
                                               const std::vector<bool>& leave_out) {
  std::string head = "INSERT INTO " + name_ + " (pipeline, id) VALUES ";
  std::string pipeline;
  mysql::append_quoted(pipeline, pipeline_);
  std::string sql;
  size_t in_statement = 0;
  for (size_t k = 0; k <= ids.size(); ++k) {
    bool last = k == ids.size();
    if (!last && !leave_out[k] && !ids[k].empty()) {
      sql += in_statement ? ",(" : head + "(";
      sql += pipeline + ",";
      mysql::append_quoted(sql, ids[k]);
      sql += ")";
      ++in_statement;
    }
    if (in_statement && (last || in_statement == kIdsPerStatement)) {
      try {
        co_await c.exec(sql);
      } catch (const mysql::MysqlError& e) {
        if (e.code != 1062) throw;  // ER_DUP_ENTRY: kept already
        co_return false;
      }
      sql.clear();
      in_statement = 0;
    }
  }
  co_return true;
}

asio::awaitable<bool> MysqlDeliveryTable::forget_older_than(MysqlConnection& c, std::chrono::milliseconds keep) {
  auto now = std::chrono::steady_clock::now();
  if (last_forget_ && now - *last_forget_ < kForgetEvery) co_return false;
  std::string sql = "DELETE FROM " + name_ + " WHERE pipeline = ";
  mysql::append_quoted(sql, pipeline_);
  sql += " AND committed_at < NOW(6) - INTERVAL " + std::to_string(keep.count() * 1000) + " MICROSECOND";
  co_await c.exec(sql);
  co_return true;
}

}  // namespace aetl
