#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

namespace aetl {
namespace pg {
class PgConnection;
}

/// The postgres sink's delivery IDs (sinks/sql/delivery_ids.h): with a queue
/// source and exactly_once, the IDs of the committed deliveries, kept in
/// aetl_deliveries beside the sink's table, in each batch's transaction. Loop
/// thread; PgError from the server is passed on.
class PgDeliveryTable {
 public:
  /// `name`: the table, quoted (maybe schema-qualified); `pipeline`: the rows'
  /// first key column, read at each statement (it outlives this).
  PgDeliveryTable(std::string name, const std::string& pipeline) : name_(std::move(name)), pipeline_(pipeline) {}

  /// Creates the table if it is missing (looking first, so rights on the table suffice).
  asio::awaitable<void> ensure(pg::PgConnection& c);
  /// Per ID, whether it is kept (an earlier delivery committed it). Takes no lock.
  asio::awaitable<std::vector<bool>> find(pg::PgConnection& c, const std::vector<std::string>& ids);
  /// In an open transaction, last before its COMMIT: keeps `ids` (but not those
  /// `leave_out` marks, nor empty ones), with COPY. False if one of them is kept
  /// already (an earlier commit, or a transaction that committed first): the
  /// transaction is then aborted, and the caller rolls back and tries again. A
  /// concurrent transaction keeping one of them makes this wait for its end (the
  /// server ends a transaction whose client stopped after this statement:
  /// idle_in_transaction_session_timeout).
  asio::awaitable<bool> keep(pg::PgConnection& c, const std::vector<std::string>& ids,
                             const std::vector<bool>& leave_out);
  /// In an open transaction, at most once per kForgetEvery (counted from a commit
  /// that did it): drops IDs kept longer than `keep`. True if it did; call
  /// forgotten() once that transaction has committed.
  asio::awaitable<bool> forget_older_than(pg::PgConnection& c, std::chrono::milliseconds keep);
  void forgotten() { last_forget_ = std::chrono::steady_clock::now(); }

 private:
  std::string name_;
  std::string pipeline_;
  std::optional<std::chrono::steady_clock::time_point> last_forget_;
};

/// `items` as a PostgreSQL array literal of text ({"a","b"}).
std::string pg_text_array(const std::vector<std::string>& items);

}  // namespace aetl
