#include "net/mysql/mysql_connection.h"

#include <mysql.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

namespace aetl::mysql {

namespace {

// Worth reconnecting and trying again: the client's own connection errors, a
// server shutting down or out of connections, a deadlock or lock wait timeout
// (the transaction was rolled back), a killed connection.
bool transient_code(unsigned code) {
  if (code >= 2000 && code < 3000) return code != 2059;  // CR_* (2059: an authentication plugin cannot be loaded)
  switch (code) {
    case 1021:  // ER_DISK_FULL
    case 1040:  // ER_CON_COUNT_ERROR
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1077:  // ER_NORMAL_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1153:  // ER_NET_PACKET_TOO_LARGE is not: see bad_row
    case 1158: case 1159: case 1160: case 1161:  // ER_NET_READ/WRITE errors and interruptions
    case 1205:  // ER_LOCK_WAIT_TIMEOUT
    case 1213:  // ER_LOCK_DEADLOCK
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (idle too long)
      return code != 1153;
    default:
      return false;
  }
}

bool auth_code(unsigned code) {
  return code == 1044 || code == 1045 || code == 1049 || code == 1698 || code == 2059 || code == 1251;
}

/// What connecting set up: libmariadb's handle with the loop-friendly options.
MYSQL* new_handle(std::chrono::milliseconds timeout) {
  MYSQL* m = mysql_init(nullptr);
  if (!m) return nullptr;
  mysql_options(m, MYSQL_OPT_NONBLOCK, nullptr);
  mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  unsigned seconds = static_cast<unsigned>(std::max<long long>(1, (timeout.count() + 999) / 1000));
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &seconds);
  unsigned one = 1;
  mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &one);  // answered by our handler: only what load_data() hands it
  my_bool report = 1;
  mysql_options(m, MYSQL_REPORT_DATA_TRUNCATION, &report);
  return m;
}

/// The session's sql_mode with STRICT_ALL_TABLES added and NO_BACKSLASH_ESCAPES taken out.
std::string strict_mode(std::string_view mode) {
  std::string out;
  bool strict = false;
  for (size_t at = 0; at <= mode.size();) {
    size_t comma = mode.find(',', at);
    if (comma == std::string_view::npos) comma = mode.size();
    std::string_view word = mode.substr(at, comma - at);
    at = comma + 1;
    if (word.empty() || word == "NO_BACKSLASH_ESCAPES") continue;
    if (word == "STRICT_ALL_TABLES") strict = true;
    out += (out.empty() ? "" : ",") + std::string(word);
  }
  if (!strict) out += std::string(out.empty() ? "" : ",") + "STRICT_ALL_TABLES";
  return out;
}

}  // namespace

bool MysqlError::bad_row() const {
  if (sqlstate.size() == 5 && (sqlstate.compare(0, 2, "22") == 0 || sqlstate.compare(0, 2, "23") == 0)) return true;
  switch (code) {
    case 1048:  // ER_BAD_NULL_ERROR
    case 1062:  // ER_DUP_ENTRY
    case 1153:  // ER_NET_PACKET_TOO_LARGE: one row longer than max_allowed_packet
    case 1264:  // ER_WARN_DATA_OUT_OF_RANGE
    case 1265:  // WARN_DATA_TRUNCATED
    case 1292:  // ER_TRUNCATED_WRONG_VALUE
    case 1366:  // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
    case 1367:  // ER_ILLEGAL_VALUE_FOR_TYPE
    case 1406:  // ER_DATA_TOO_LONG
    case 1411:  // ER_WRONG_VALUE_FOR_TYPE
    case 1452:  // ER_NO_REFERENCED_ROW_2
    case 4025:  // ER_CONSTRAINT_FAILED (CHECK, JSON_VALID)
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------- the socket

struct MysqlConnection::Socket {
  Socket(asio::any_io_executor ex, int f) : fd(f), descriptor(ex, f) {}
  ~Socket() {
    asio::error_code ec;
    descriptor.cancel(ec);
    descriptor.release();  // libmariadb owns the socket and closes it
  }
  int fd;
  asio::posix::stream_descriptor descriptor;
};

/// LOAD DATA LOCAL INFILE's bytes, handed to libmariadb from memory.
struct MysqlConnection::Infile {
  std::vector<std::string_view> pieces;
  size_t piece = 0, at = 0;
};

MysqlConnection::MysqlConnection(asio::any_io_executor ex) : ex_(ex) {}

MysqlConnection::~MysqlConnection() {
  if (!m_) return;
  // A shut socket makes mysql_close's COM_QUIT fail at once rather than wait on
  // a server that does not read (close() is the polite way, with a deadline).
  if (socket_) ::shutdown(socket_->fd, SHUT_RDWR);
  socket_.reset();
  if (streaming_) mysql_free_result(streaming_);
  mysql_close(m_);
}

MysqlError MysqlConnection::error(const std::string& doing) const {
  unsigned code = m_ ? mysql_errno(m_) : 0;
  std::string msg = m_ ? mysql_error(m_) : "";
  std::string state = m_ ? mysql_sqlstate(m_) : "";
  if (msg.empty()) msg = "failed while " + doing;
  MysqlError::Kind kind = transient_code(code) ? MysqlError::Kind::connection
                          : auth_code(code)    ? MysqlError::Kind::auth
                                               : MysqlError::Kind::query;
  return MysqlError(msg, kind, code, state);
}

void MysqlConnection::fail(const std::string& doing) {
  MysqlError e = error(doing);
  if (e.kind == MysqlError::Kind::connection && e.code >= 2000) broken_ = true;
  throw e;
}

void MysqlConnection::interrupt() {
  interrupted_ = true;
  if (socket_) {
    asio::error_code ec;
    socket_->descriptor.cancel(ec);
  }
}

asio::awaitable<int> MysqlConnection::wait(int status) {
  struct State {
    explicit State(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    int ready = 0;
  };
  if (interrupted_) co_return -1;
  int fd = static_cast<int>(mysql_get_socket(m_));
  if (fd >= 0 && (!socket_ || socket_->fd != fd)) {
    socket_.reset();
    socket_ = std::make_unique<Socket>(ex_, fd);
  }
  auto state = std::make_shared<State>(ex_);
  if (status & MYSQL_WAIT_TIMEOUT) state->timer.expires_after(std::chrono::milliseconds(mysql_get_timeout_value_ms(m_)));
  else state->timer.expires_at(std::chrono::steady_clock::time_point::max());
  auto on_ready = [state](int bit) {
    return [state, bit](const asio::error_code& ec) {
      if (!ec) state->ready |= bit;
      state->timer.cancel();
    };
  };
  if (socket_ && (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT)))
    socket_->descriptor.async_wait(asio::posix::stream_descriptor::wait_read, on_ready(MYSQL_WAIT_READ));
  if (socket_ && (status & MYSQL_WAIT_WRITE))
    socket_->descriptor.async_wait(asio::posix::stream_descriptor::wait_write, on_ready(MYSQL_WAIT_WRITE));
  asio::error_code ec;
  co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) state->ready |= MYSQL_WAIT_TIMEOUT;
  if (socket_) socket_->descriptor.cancel(ec);  // the other direction, if it is still waited for
  if (interrupted_) co_return -1;
  co_return state->ready;
}

asio::awaitable<void> MysqlConnection::drive(int status, const std::function<int(int)>& step) {
  while (status) {
    int ready = co_await wait(status);
    if (ready < 0) {
      // Interrupted: the operation is ended by shutting the socket, so that the
      // library's suspended call returns (with an error) before anything else.
      broken_ = true;
      if (int fd = static_cast<int>(mysql_get_socket(m_)); fd >= 0) ::shutdown(fd, SHUT_RDWR);
      for (int i = 0; status && i < 1000; ++i) status = step(status);  // as if what it waits for came
      throw MysqlError("mysql " + where_ + ": interrupted", MysqlError::Kind::connection, 2013);
    }
    status = step(ready);
  }
}

// ---------------------------------------------------------------- connecting

namespace {

/// The addresses to try for `host`: itself for localhost (Connector/C's Unix
/// socket) or an address; else looked up on the loop (libmariadb's own look-up
/// would block it).
asio::awaitable<std::vector<std::string>> addresses(asio::any_io_executor ex, const MysqlUrl& url,
                                                    std::chrono::milliseconds timeout) {
  if (!url.socket.empty() || url.host == "localhost") co_return std::vector<std::string>{url.host};
  asio::error_code ec;
  asio::ip::make_address(url.host, ec);
  if (!ec) co_return std::vector<std::string>{url.host};
  asio::ip::tcp::resolver resolver(ex);
  asio::steady_timer timer(ex, timeout);  // a look-up is not allowed longer than a connect
  timer.async_wait([&resolver](const asio::error_code& e) {
    if (!e) resolver.cancel();
  });
  auto results = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                 asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  if (ec == asio::error::operation_aborted)
    throw MysqlError("mysql " + url.where() + ": no address for the host name within " +
                         std::to_string(timeout.count()) + " ms",
                     MysqlError::Kind::connection, 2005);
  if (ec || results.empty())
    throw MysqlError("mysql " + url.where() + ": cannot look up the host name (" +
                         (ec ? ec.message() : std::string("no address")) + ")",
                     MysqlError::Kind::connection, 2005);
  std::vector<std::string> out;
  for (const auto& r : results) out.push_back(r.endpoint().address().to_string());
  co_return out;
}

}  // namespace

asio::awaitable<std::unique_ptr<MysqlConnection>> MysqlConnection::connect(asio::any_io_executor ex, MysqlUrl url,
                                                                           std::chrono::milliseconds timeout) {
  std::unique_ptr<MysqlConnection> c(new MysqlConnection(ex));
  c->where_ = url.where();
  std::vector<std::string> hosts = co_await addresses(ex, url, timeout);
  // Our own deadline over connecting and setting the session up: the library's
  // counts only the TCP connect, and a peer can go silent after it.
  bool late = false;
  asio::steady_timer overall(ex, timeout);
  auto guard = std::make_shared<int>(0);
  std::weak_ptr<int> alive = guard;
  MysqlConnection* self = c.get();
  overall.async_wait([alive, self, &late](const asio::error_code& ec) {
    if (ec || alive.expired()) return;
    late = true;
    self->interrupt();
  });
  std::exception_ptr failed;
  try {
    std::optional<MysqlError> last;
    for (const std::string& host : hosts) {
      c->socket_.reset();
      if (c->m_) mysql_close(c->m_);
      c->m_ = new_handle(timeout);
      if (!c->m_) throw MysqlError("mysql " + c->where_ + ": out of memory", MysqlError::Kind::connection);
      // Only the data load_data() hands over: a server asking for any other
      // "local file" (a rogue one, or a query that says LOAD DATA LOCAL) is refused.
      mysql_set_local_infile_handler(c->m_, &MysqlConnection::infile_init, &MysqlConnection::infile_read,
                                     &MysqlConnection::infile_end, &MysqlConnection::infile_error, c.get());
      MYSQL* ret = nullptr;
      const char* password = url.password ? url.password->c_str() : nullptr;
      int status = mysql_real_connect_start(&ret, c->m_, host.c_str(), url.user.c_str(), password,
                                            url.database.empty() ? nullptr : url.database.c_str(), url.port,
                                            url.socket.empty() ? nullptr : url.socket.c_str(), 0);
      MYSQL* m = c->m_;
      co_await c->drive(status, [&ret, m](int ready) { return mysql_real_connect_cont(&ret, m, ready); });
      if (ret) {
        last.reset();
        break;
      }
      MysqlError e = c->error("connecting");
      last = MysqlError("mysql " + c->where_ + ": " + e.what(), e.kind, e.code, e.sqlstate);
      if (e.kind == MysqlError::Kind::auth) break;  // the next address will not change the answer
    }
    if (last) throw *last;
    c->keep_alive();
    MysqlRows vars = co_await c->query("SELECT @@max_allowed_packet, @@SESSION.sql_mode");
    if (!vars.rows.empty() && vars.rows[0][0]) c->max_packet_ = std::strtoull(vars.rows[0][0]->c_str(), nullptr, 10);
    std::string mode = vars.rows.empty() || !vars.rows[0][1] ? "" : *vars.rows[0][1];
    std::string set_mode = "SET SESSION sql_mode = ";
    append_quoted(set_mode, strict_mode(mode));
    co_await c->exec(set_mode);
  } catch (const MysqlError&) {
    failed = std::current_exception();
  }
  overall.cancel();
  guard.reset();
  if (late)
    throw MysqlError("mysql " + c->where_ + ": no connection within " + std::to_string(timeout.count()) + " ms",
                     MysqlError::Kind::connection, 2013);
  if (failed) std::rethrow_exception(failed);
  co_return c;
}

void MysqlConnection::keep_alive() {
  // A peer that went silent is noticed in about a minute rather than the
  // system's two hours (as the postgres connections do).
  int fd = static_cast<int>(mysql_get_socket(m_));
  if (fd < 0) return;
  int on = 1, idle = 30, interval = 10, count = 3;
  unsigned user_timeout = 60000;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}

int MysqlConnection::infile_init(void** ptr, const char*, void* user) {
  auto* self = static_cast<MysqlConnection*>(user);
  *ptr = self;
  return self->infile_ ? 0 : 1;  // no load of ours in progress: refused
}

int MysqlConnection::infile_read(void* ptr, char* buf, unsigned int size) {
  auto* self = static_cast<MysqlConnection*>(ptr);
  if (!self->infile_) return -1;
  Infile& in = *self->infile_;
  unsigned n = 0;
  while (n < size && in.piece < in.pieces.size()) {
    std::string_view p = in.pieces[in.piece];
    size_t take = std::min<size_t>(size - n, p.size() - in.at);
    std::memcpy(buf + n, p.data() + in.at, take);
    n += static_cast<unsigned>(take);
    in.at += take;
    if (in.at == p.size()) ++in.piece, in.at = 0;
  }
  return static_cast<int>(n);
}

void MysqlConnection::infile_end(void*) {}

int MysqlConnection::infile_error(void* ptr, char* buf, unsigned int size) {
  auto* self = static_cast<MysqlConnection*>(ptr);
  std::snprintf(buf, size, "%s", self && self->infile_ ? "cannot read the batch" : "LOAD DATA LOCAL refused: aetl sends no files");
  return 2000;
}

// ---------------------------------------------------------------- statements

asio::awaitable<void> MysqlConnection::run_query(std::string_view sql) {
  if (broken_) throw MysqlError("mysql " + where_ + ": the connection was lost", MysqlError::Kind::connection, 2013);
  if (streaming_) {
    co_await drop_result(streaming_);
    streaming_ = nullptr;
  }
  int err = 0;
  MYSQL* m = m_;
  int status = mysql_real_query_start(&err, m, sql.data(), sql.size());
  co_await drive(status, [&err, m](int ready) { return mysql_real_query_cont(&err, m, ready); });
  if (err) fail("running a statement");
}

asio::awaitable<void> MysqlConnection::drop_result(MYSQL_RES* res) {
  MYSQL_ROW row = nullptr;
  for (;;) {  // the rest of a streamed result, read and dropped
    int status = mysql_fetch_row_start(&row, res);
    co_await drive(status, [&row, res](int ready) { return mysql_fetch_row_cont(&row, res, ready); });
    if (!row) break;
  }
  int status = mysql_free_result_start(res);
  co_await drive(status, [res](int ready) { return mysql_free_result_cont(res, ready); });
}

asio::awaitable<uint64_t> MysqlConnection::exec(std::string_view sql) {
  co_await run_query(sql);
  uint64_t affected = 0;
  if (mysql_field_count(m_) == 0) {
    affected = mysql_affected_rows(m_);
  } else {
    MYSQL_RES* res = nullptr;
    MYSQL* m = m_;
    int status = mysql_store_result_start(&res, m);
    co_await drive(status, [&res, m](int ready) { return mysql_store_result_cont(&res, m, ready); });
    if (!res) fail("reading a result");
    mysql_free_result(res);
  }
  co_return affected;
}

asio::awaitable<MysqlRows> MysqlConnection::query(std::string_view sql) {
  co_await run_query(sql);
  MysqlRows out;
  if (mysql_field_count(m_) == 0) co_return out;
  MYSQL_RES* res = nullptr;
  MYSQL* m = m_;
  int status = mysql_store_result_start(&res, m);
  co_await drive(status, [&res, m](int ready) { return mysql_store_result_cont(&res, m, ready); });
  if (!res) fail("reading a result");
  unsigned n = mysql_num_fields(res);
  MYSQL_FIELD* fields = mysql_fetch_fields(res);
  for (unsigned i = 0; i < n; ++i) out.columns.emplace_back(fields[i].name);
  while (MYSQL_ROW row = mysql_fetch_row(res)) {  // held by the client: no waiting
    unsigned long* lengths = mysql_fetch_lengths(res);
    auto& r = out.rows.emplace_back();
    for (unsigned i = 0; i < n; ++i)
      r.push_back(row[i] ? std::optional<std::string>(std::string(row[i], lengths[i])) : std::nullopt);
  }
  mysql_free_result(res);
  co_return out;
}

asio::awaitable<std::vector<MysqlField>> MysqlConnection::stream(std::string_view sql) {
  co_await run_query(sql);
  std::vector<MysqlField> out;
  if (mysql_field_count(m_) == 0) co_return out;
  streaming_ = mysql_use_result(m_);
  if (!streaming_) fail("reading a result");
  unsigned n = mysql_num_fields(streaming_);
  stream_columns_ = n;
  MYSQL_FIELD* fields = mysql_fetch_fields(streaming_);
  for (unsigned i = 0; i < n; ++i) {
    MysqlField f;
    f.name = fields[i].name;
    switch (fields[i].type) {
      case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_LONG: case MYSQL_TYPE_INT24:
      case MYSQL_TYPE_LONGLONG: case MYSQL_TYPE_FLOAT: case MYSQL_TYPE_DOUBLE: case MYSQL_TYPE_DECIMAL:
      case MYSQL_TYPE_NEWDECIMAL: case MYSQL_TYPE_YEAR:
        f.as = MysqlField::As::number;
        break;
      case MYSQL_TYPE_JSON:
        f.as = MysqlField::As::json;
        break;
      case MYSQL_TYPE_TINY_BLOB: case MYSQL_TYPE_MEDIUM_BLOB: case MYSQL_TYPE_LONG_BLOB: case MYSQL_TYPE_BLOB:
      case MYSQL_TYPE_STRING: case MYSQL_TYPE_VAR_STRING: case MYSQL_TYPE_VARCHAR: {
        // MariaDB's JSON is LONGTEXT with a format name in the extended metadata.
        MARIADB_CONST_STRING format{nullptr, 0};
        if (mariadb_field_attr(&format, &fields[i], MARIADB_FIELD_ATTR_FORMAT_NAME) == 0 && format.length == 4 &&
            std::memcmp(format.str, "json", 4) == 0)
          f.as = MysqlField::As::json;
        else if (fields[i].charsetnr == 63)
          f.as = MysqlField::As::bytes;  // the binary "charset"
        break;
      }
      default:
        break;  // dates, times, bits, enums, sets: text
    }
    out.push_back(std::move(f));
  }
  co_return out;
}

asio::awaitable<bool> MysqlConnection::next_rows(size_t max_rows, const RowFn& on_row) {
  if (!streaming_) co_return false;
  MYSQL_RES* res = streaming_;
  for (size_t n = 0; n < max_rows; ++n) {
    MYSQL_ROW row = nullptr;
    int status = mysql_fetch_row_start(&row, res);
    if (status) co_await drive(status, [&row, res](int ready) { return mysql_fetch_row_cont(&row, res, ready); });
    if (!row) {
      unsigned code = mysql_errno(m_);
      MysqlError e = error("reading rows");
      mysql_free_result(res);  // the result was read to its end (or the connection is gone)
      streaming_ = nullptr;
      if (code) {
        if (e.kind == MysqlError::Kind::connection) broken_ = true;
        throw e;
      }
      co_return false;
    }
    on_row(row, mysql_fetch_lengths(res));
  }
  co_return true;
}

asio::awaitable<uint64_t> MysqlConnection::load_data(std::string_view sql, const std::vector<std::string_view>& pieces) {
  infile_ = std::make_unique<Infile>();
  infile_->pieces = pieces;
  std::exception_ptr failed;
  uint64_t affected = 0;
  try {
    affected = co_await exec(sql);
  } catch (...) {
    failed = std::current_exception();
  }
  infile_.reset();
  if (failed) std::rethrow_exception(failed);
  co_return affected;
}

asio::awaitable<void> MysqlConnection::close(std::chrono::milliseconds deadline) {
  if (!m_) co_return;
  if (broken_ || streaming_) co_return;  // the destructor shuts the socket and frees it
  asio::steady_timer timer(ex_, deadline);
  bool late = false;
  auto guard = std::make_shared<int>(0);
  std::weak_ptr<int> alive = guard;
  timer.async_wait([this, alive, &late](const asio::error_code& ec) {
    if (ec || alive.expired()) return;
    late = true;
    interrupt();
  });
  MYSQL* m = m_;
  try {
    int status = mysql_close_start(m);
    co_await drive(status, [m](int ready) { return mysql_close_cont(m, ready); });
    m_ = nullptr;  // freed by the library
  } catch (const MysqlError&) {
    // Past the deadline: drive() shut the socket and let the close finish.
    m_ = nullptr;
  }
  timer.cancel();
  guard.reset();
  socket_.reset();
}

unsigned MysqlConnection::warnings() const { return m_ ? mysql_warning_count(m_) : 0; }

// ---------------------------------------------------------------- quoting

void append_quoted(std::string& out, std::string_view v) {
  out += '\'';
  size_t plain = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const char* e = nullptr;
    switch (v[i]) {
      case '\0': e = "\\0"; break;
      case '\n': e = "\\n"; break;
      case '\r': e = "\\r"; break;
      case '\\': e = "\\\\"; break;
      case '\'': e = "\\'"; break;
      case '"': e = "\\\""; break;
      case '\032': e = "\\Z"; break;
      default: continue;
    }
    out.append(v.data() + plain, i - plain);
    out += e;
    plain = i + 1;
  }
  out.append(v.data() + plain, v.size() - plain);
  out += '\'';
}

std::string quote_ident(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out += '`';
    out += c;
  }
  return out + "`";
}

}  // namespace aetl::mysql
