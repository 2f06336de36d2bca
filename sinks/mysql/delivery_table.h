#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl {
namespace mysql {
class MysqlConnection;
}

/// The mysql sink's delivery IDs (sinks/sql/delivery_ids.h): with a queue
/// source and exactly_once, the IDs of the committed deliveries, kept in InnoDB
/// table aetl_deliveries beside the sink's table, in each batch's transaction.
/// Loop thread; MysqlError from the server is passed on.
class MysqlDeliveryTable {
 public:
  /// `name`: the table, quoted (maybe database-qualified); `pipeline`: the rows'
  /// first key column, read at each statement (it outlives this).
  MysqlDeliveryTable(std::string name, const std::string& pipeline) : name_(std::move(name)), pipeline_(pipeline) {}

  asio::awaitable<void> ensure(mysql::MysqlConnection& c);
  /// Per ID, whether it is kept (an earlier delivery committed it). A plain
  /// read: a transaction keeping one of them meanwhile makes keep() fail.
  asio::awaitable<std::vector<bool>> find(mysql::MysqlConnection& c, const std::vector<std::string>& ids);
  /// In an open transaction, last before its COMMIT: keeps `ids` (but not those
  /// `leave_out` marks, nor empty ones). False if one of them is kept already
  /// (the statement was undone; the caller rolls back and tries again). A
  /// concurrent transaction keeping one of them makes this wait for its end
  /// (the server ends a transaction left idle: idle_transaction_timeout).
  asio::awaitable<bool> keep(mysql::MysqlConnection& c, const std::vector<std::string>& ids,
                             const std::vector<bool>& leave_out);
  /// In an open transaction, at most once per kForgetEvery: drops IDs kept
  /// longer than `keep`. True if it did; call forgotten() once it committed.
  asio::awaitable<bool> forget_older_than(mysql::MysqlConnection& c, std::chrono::milliseconds keep);
  void forgotten() { last_forget_ = std::chrono::steady_clock::now(); }

 private:
  std::string name_;
  std::string pipeline_;
  std::optional<std::chrono::steady_clock::time_point> last_forget_;
};

}  // namespace aetl
