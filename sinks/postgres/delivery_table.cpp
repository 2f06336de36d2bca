#include "sinks/postgres/delivery_table.h"

#include <string_view>
#include <unordered_set>

#include "net/pg/pg_connection.h"
#include "sinks/sql/delivery_ids.h"

namespace aetl {

using pg::PgConnection;
using Params = std::vector<std::optional<std::string>>;
// GCC 12 can destroy a temporary inside a co_await expression twice (a braced
// list, a string built with + or ?:): statements and parameters are named first.

std::string pg_text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  out += '}';
  return out;
}

asio::awaitable<void> PgDeliveryTable::ensure(PgConnection& c) {
  std::string columns =
      "(pipeline text NOT NULL, id text NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(),"
      " PRIMARY KEY (pipeline, id))";
  co_await pg::ensure_table(c, name_, columns);
}

asio::awaitable<std::vector<bool>> PgDeliveryTable::find(PgConnection& c, const std::vector<std::string>& ids) {
  Params params{pipeline_, pg_text_array(ids)};
  std::string sql = "SELECT id FROM " + name_ + " WHERE pipeline = $1 AND id = ANY($2::text[])";
  pg::PgResult r = co_await c.exec_params(sql, params);
  std::unordered_set<std::string_view> found;
  for (int i = 0; i < r.rows(); ++i) found.insert(r.value(i, 0));
  std::vector<bool> kept(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) kept[i] = found.count(ids[i]) > 0;
  co_return kept;
}

asio::awaitable<bool> PgDeliveryTable::keep(PgConnection& c, const std::vector<std::string>& ids) {
  if (ids.empty()) co_return true;
  Params params{pipeline_, pg_text_array(ids)};
  std::string sql = "INSERT INTO " + name_ + " (pipeline, id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING";
  pg::PgResult r = co_await c.exec_params(sql, params);
  co_return r.affected() >= 0 && static_cast<size_t>(r.affected()) == ids.size();
}

asio::awaitable<bool> PgDeliveryTable::forget_older_than(PgConnection& c, std::chrono::milliseconds keep) {
  auto now = std::chrono::steady_clock::now();
  if (last_forget_ && now - *last_forget_ < kForgetEvery) co_return false;
  Params params{pipeline_, std::to_string(keep.count())};
  std::string sql = "DELETE FROM " + name_ + " WHERE pipeline = $1 AND committed_at < now() - $2::bigint * interval '1 millisecond'";
  co_await c.exec_params(sql, params);
  co_return true;
}

}  // namespace aetl
