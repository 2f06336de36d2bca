#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
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

#include "net/mysql/mysql_url.h"

// Connector/C's handle, without its header everywhere.
typedef struct st_mysql MYSQL;
typedef struct st_mysql_res MYSQL_RES;

namespace aetl::mysql {

/// A failure talking to MariaDB/MySQL, with the server's error number and SQLSTATE.
class MysqlError : public std::runtime_error {
 public:
  enum class Kind {
    connection,  ///< unreachable, cut off, a deadlock or lock timeout: worth reconnecting and retrying
    auth,        ///< the server refused the credentials (or the database)
    query,       ///< the server refused a statement
  };
  MysqlError(std::string message, Kind kind, unsigned code = 0, std::string sqlstate = {})
      : std::runtime_error(std::move(message)), kind(kind), code(code), sqlstate(std::move(sqlstate)) {}
  Kind kind;
  unsigned code;
  std::string sqlstate;
  /// SQLSTATE class 22 (data exception) or 23 (integrity constraint), or a value
  /// the column cannot take: a row is at fault, not the batch.
  bool bad_row() const;
};

/// A small result, held whole (catalogue look-ups, counts).
struct MysqlRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

/// A column of a streamed result: how its values are written as JSON.
struct MysqlField {
  enum class As : uint8_t { number, text, json, bytes };  // bytes: a binary string (BLOB, VARBINARY)
  std::string name;
  As as = As::text;
};

/// A MariaDB Connector/C connection driven by the event loop: non-blocking API
/// (*_start / *_cont), its socket watched with asio, so connecting, statements
/// and reading rows never block the loop thread; host names are looked up on the
/// loop first. One statement at a time (a connection is used by one task).
/// Every session: utf8mb4, and an sql_mode with STRICT_ALL_TABLES (a value a
/// column cannot hold is refused, not cut) and without NO_BACKSLASH_ESCAPES (the
/// quoting of quote() holds).
class MysqlConnection {
 public:
  /// Throws MysqlError (connection or auth) naming host, port and database, never the password.
  static asio::awaitable<std::unique_ptr<MysqlConnection>> connect(asio::any_io_executor ex, MysqlUrl url,
                                                                   std::chrono::milliseconds timeout);
  ~MysqlConnection();
  MysqlConnection(const MysqlConnection&) = delete;
  MysqlConnection& operator=(const MysqlConnection&) = delete;

  /// Runs one statement; a result it has is read and dropped. Returns the rows
  /// it affected (as the server counts them: an upsert's update counts two).
  asio::awaitable<uint64_t> exec(std::string_view sql);
  /// Runs one statement and returns its rows, held whole.
  asio::awaitable<MysqlRows> query(std::string_view sql);

  /// Starts a query whose rows are read with next_rows(), without the client
  /// holding the result: the server sends as they are read.
  asio::awaitable<std::vector<MysqlField>> stream(std::string_view sql);
  /// Calls `row` for up to `max_rows` rows of the streamed result (values as the
  /// text protocol has them, null for NULL, with their lengths); waits for the
  /// server only when nothing is buffered. False at the end of the result.
  using RowFn = std::function<void(const char* const* values, const unsigned long* lengths)>;
  asio::awaitable<bool> next_rows(size_t max_rows, const RowFn& row);

  /// LOAD DATA LOCAL INFILE `sql` (its file name is ignored): the file's bytes are
  /// `pieces`, read from memory. Returns the rows affected.
  asio::awaitable<uint64_t> load_data(std::string_view sql, const std::vector<std::string_view>& pieces);

  /// Sends COM_QUIT and closes, waiting at most until `deadline` (a paused server
  /// does not answer): past it the socket is shut down and the handle freed.
  asio::awaitable<void> close(std::chrono::milliseconds deadline);

  /// The warnings of the last statement (a LOAD DATA LOCAL turns values it had
  /// to cut or change into warnings, whatever the sql_mode).
  unsigned warnings() const;
  /// The server's max_allowed_packet: the longest statement it takes.
  size_t max_packet() const { return max_packet_; }
  /// The server cut the connection (or it was interrupted): reconnect instead.
  bool broken() const { return broken_; }
  /// Cancels what the connection is waiting for (the run is aborting): the
  /// awaiting call throws MysqlError(connection); the connection is broken.
  void interrupt();
  /// "127.0.0.1:3306/shop" for messages.
  const std::string& where() const { return where_; }
  /// Session state a user made on this connection (a temporary table): it goes
  /// with the connection, so a new one after a lost one starts without it.
  bool has(const std::string& what) const { return made_.count(what) > 0; }
  void made(const std::string& what) { made_.insert(what); }

 private:
  struct Socket;
  struct Infile;
  explicit MysqlConnection(asio::any_io_executor ex);
  /// Waits for what a *_start/_cont call asked (MYSQL_WAIT_* bits) and returns what happened.
  asio::awaitable<int> wait(int status);
  /// Calls `step(ready)` (a *_cont call) until it asks for nothing more.
  asio::awaitable<void> drive(int status, const std::function<int(int)>& step);
  asio::awaitable<void> run_query(std::string_view sql);
  asio::awaitable<void> drop_result(MYSQL_RES* res);
  [[noreturn]] void fail(const std::string& doing);
  void keep_alive();
  // LOAD DATA LOCAL's handler for the connection's life: it reads infile_, and
  // refuses when no load_data() is in progress.
  static int infile_init(void** ptr, const char* name, void* user);
  static int infile_read(void* ptr, char* buf, unsigned int size);
  static void infile_end(void* ptr);
  static int infile_error(void* ptr, char* buf, unsigned int size);
  MysqlError error(const std::string& doing) const;

  asio::any_io_executor ex_;
  MYSQL* m_ = nullptr;
  std::unique_ptr<Socket> socket_;
  MYSQL_RES* streaming_ = nullptr;
  size_t stream_columns_ = 0;
  std::unique_ptr<Infile> infile_;
  bool interrupted_ = false;
  bool broken_ = false;
  size_t max_packet_ = 16 * 1024 * 1024;
  std::string where_;
  std::set<std::string> made_;
};

/// `value` as an SQL string literal ('...' with \0, \n, \r, \\, ', " and ^Z
/// escaped), for a session whose sql_mode has no NO_BACKSLASH_ESCAPES.
void append_quoted(std::string& out, std::string_view value);
/// An identifier in backquotes (`my ``odd`` name`).
std::string quote_ident(std::string_view name);

}  // namespace aetl::mysql
