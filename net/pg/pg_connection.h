#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

// libpq's types, without its header everywhere.
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace aetl::pg {

/// A failure talking to PostgreSQL, with the server's SQLSTATE when it sent one.
class PgError : public std::runtime_error {
 public:
  enum class Kind {
    connection,  ///< unreachable, refused, cut off: worth reconnecting and retrying
    auth,        ///< the server refused the credentials
    query,       ///< the server refused a statement (see sqlstate)
  };
  PgError(std::string message, Kind kind, std::string sqlstate = {})
      : std::runtime_error(std::move(message)), kind(kind), sqlstate(std::move(sqlstate)) {}
  Kind kind;
  std::string sqlstate;
  /// Class 22 (data exception) or 23 (integrity constraint): a row is at fault, not the batch.
  bool bad_row() const { return sqlstate.size() == 5 && (sqlstate.compare(0, 2, "22") == 0 || sqlstate.compare(0, 2, "23") == 0); }
};

/// One result of a statement; owns the PGresult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r);
  PgResult(PgResult&&) noexcept;
  PgResult& operator=(PgResult&&) noexcept;
  ~PgResult();

  int rows() const;
  int columns() const;
  bool is_null(int row, int column) const;
  std::string_view value(int row, int column) const;
  std::string column_name(int column) const;
  unsigned column_type(int column) const;  ///< the type's OID
  /// Rows affected (INSERT, UPDATE, COPY ...).
  long affected() const;
  const PGresult* get() const { return r_; }

 private:
  PGresult* r_ = nullptr;
};

/// A libpq connection driven by the event loop: non-blocking mode, its socket
/// watched with asio, so connecting, sending, COPY and results never block the
/// loop thread. One statement at a time (a connection is used by one task).
class PgConnection {
 public:
  /// Connects with a libpq connection string ("" = the PG* environment variables).
  /// Throws PgError (connection or auth) naming host and port, never the password.
  static asio::awaitable<std::unique_ptr<PgConnection>> connect(asio::any_io_executor ex, std::string conninfo,
                                                                std::chrono::milliseconds timeout);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// Runs one or more statements (simple protocol); returns the last result.
  /// Throws PgError on the first error.
  asio::awaitable<PgResult> exec(std::string_view sql);
  /// One statement with text parameters ($1, $2, ...; nullopt is NULL).
  asio::awaitable<PgResult> exec_params(std::string_view sql, const std::vector<std::optional<std::string>>& params);
  /// COPY ... FROM STDIN: sends `data` (in the format the statement names) and
  /// returns the COPY's result. Large data is sent as the socket takes it.
  asio::awaitable<PgResult> copy_in(std::string_view sql, std::string_view data);
  /// The same with the data in pieces, sent in order (contiguous ones as one).
  asio::awaitable<PgResult> copy_in(std::string_view sql, const std::vector<std::string_view>& pieces);

  /// COPY ... TO STDOUT, read a piece at a time so memory stays bounded: start it,
  /// then call copy_out_rows() until it returns false.
  asio::awaitable<void> copy_out_start(std::string_view sql);
  /// Appends up to `max_rows` rows of COPY data (each ending in a newline) to
  /// `out`; waits for the server only when nothing is buffered. False at the end.
  asio::awaitable<bool> copy_out_rows(std::string& out, size_t max_rows, size_t& rows);

  /// `value` as an SQL string literal, quoted for this connection.
  std::string literal(std::string_view value) const;

  /// The server cut the connection (or it was never made): reconnect instead.
  bool broken() const;
  /// Cancels what the connection is waiting for (the run is aborting): the
  /// awaiting call throws PgError(connection).
  void interrupt();
  /// "127.0.0.1:5432/db" for messages.
  std::string where() const;
  /// Session state a user made on this connection (a temporary table): it goes
  /// with the connection, so a new one after a lost one starts without it.
  bool has(const std::string& what) const { return made_.count(what) > 0; }
  void made(const std::string& what) { made_.insert(what); }

 private:
  struct Socket;
  explicit PgConnection(asio::any_io_executor ex);
  enum Ready { readable = 1, writable = 2 };
  asio::awaitable<int> wait(int what, std::chrono::steady_clock::time_point deadline);
  asio::awaitable<void> flush();
  /// Sends a COPY statement and waits until the server is in COPY mode.
  asio::awaitable<void> start_copy(std::string_view sql);
  asio::awaitable<std::vector<PgResult>> results(bool stop_at_copy);
  void watch_socket();
  [[noreturn]] void fail(const std::string& doing) const;

  asio::any_io_executor ex_;
  PGconn* conn_ = nullptr;
  std::unique_ptr<Socket> socket_;
  bool interrupted_ = false;
  std::set<std::string> made_;
};

/// The connection string without its password, for messages.
std::string redact_conninfo(std::string_view conninfo);

/// Runs a CREATE ... IF NOT EXISTS outside a transaction. Sessions creating the
/// same object at once can make it fail (a unique violation in the catalogue,
/// 23505, or 42P07): the object then exists, which is what was asked.
asio::awaitable<void> create_if_missing(PgConnection& c, const std::string& sql);

/// Creates table `name` (quoted, maybe schema-qualified) as `columns` ("(a int,
/// ...)") unless it exists. It looks first: CREATE ... IF NOT EXISTS wants CREATE
/// on the schema even when the table is there, and a role with rights on the
/// table alone is enough.
asio::awaitable<void> ensure_table(PgConnection& c, const std::string& name, const std::string& columns);

}  // namespace aetl::pg
