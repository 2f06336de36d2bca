#include "net/pg/pg_connection.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "net/sql_table.h"

namespace aetl::pg {

namespace {

std::string first_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  // libpq puts the server's message on its own lines ("connection to server at
  // ... failed: FATAL:  password authentication failed ..."): keep one line.
  for (size_t nl; (nl = s.find('\n')) != std::string::npos;) s.replace(nl, 1, " ");
  return s;
}

/// The server's error as one line: the primary message, its detail in brackets.
PgError result_error(const PGresult* r) {
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string msg = primary ? primary : first_line(PQresultErrorMessage(r));
  if (detail) msg += std::string(" (") + detail + ")";
  std::string code = state ? state : "";
  // Worth trying again: connection exceptions (08), a deadlock or serialization
  // failure (40), insufficient resources such as a full disk (53), an
  // administrator's shutdown or a recovery conflict (57P0x).
  auto cls = [&](const char* c) { return code.compare(0, std::strlen(c), c) == 0; };
  bool transient = cls("08") || cls("40") || cls("53") || cls("57P0");
  return PgError(msg, transient ? PgError::Kind::connection : PgError::Kind::query, code);
}

bool failed(const PGresult* r) {
  ExecStatusType s = PQresultStatus(r);
  return s == PGRES_FATAL_ERROR || s == PGRES_BAD_RESPONSE || s == PGRES_NONFATAL_ERROR;
}

}  // namespace

// ---------------------------------------------------------------- PgResult

PgResult::PgResult(PGresult* r) : r_(r) {}
PgResult::PgResult(PgResult&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = std::exchange(o.r_, nullptr);
  }
  return *this;
}
PgResult::~PgResult() {
  if (r_) PQclear(r_);
}
int PgResult::rows() const { return r_ ? PQntuples(r_) : 0; }
int PgResult::columns() const { return r_ ? PQnfields(r_) : 0; }
bool PgResult::is_null(int row, int column) const { return PQgetisnull(r_, row, column); }
std::string_view PgResult::value(int row, int column) const {
  return {PQgetvalue(r_, row, column), static_cast<size_t>(PQgetlength(r_, row, column))};
}
std::string PgResult::column_name(int column) const { return PQfname(r_, column); }
unsigned PgResult::column_type(int column) const { return PQftype(r_, column); }
long PgResult::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return *n ? std::strtol(n, nullptr, 10) : 0;
}

// ---------------------------------------------------------------- PgConnection

struct PgConnection::Socket {
  Socket(asio::any_io_executor ex, int f) : fd(f), descriptor(ex, f) {}
  ~Socket() {
    asio::error_code ec;
    descriptor.cancel(ec);
    descriptor.release();  // libpq owns the socket and closes it
  }
  int fd;
  asio::posix::stream_descriptor descriptor;
};

PgConnection::PgConnection(asio::any_io_executor ex) : ex_(ex) {}

PgConnection::~PgConnection() {
  socket_.reset();  // before PQfinish closes the fd
  if (conn_) PQfinish(conn_);
}

void PgConnection::watch_socket() {
  int fd = PQsocket(conn_);
  if (fd < 0) fail("connecting");
  if (socket_ && socket_->fd == fd) return;
  socket_.reset();
  socket_ = std::make_unique<Socket>(ex_, fd);
}

std::string PgConnection::where() const {
  if (!conn_) return "postgres";
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  const char* db = PQdb(conn_);
  std::string h = host && *host ? host : "localhost";
  if (!h.empty() && h[0] == '/') h = "socket " + h;  // a Unix socket directory
  return h + ":" + (port && *port ? port : "5432") + "/" + (db ? db : "");
}

void PgConnection::fail(const std::string& doing) const {
  std::string msg = conn_ ? first_line(PQerrorMessage(conn_)) : "out of memory";
  if (msg.empty()) msg = "failed while " + doing;
  PgError::Kind kind = PgError::Kind::connection;
  if (msg.find("password authentication failed") != std::string::npos ||
      msg.find("no password supplied") != std::string::npos ||
      msg.find("authentication failed") != std::string::npos)
    kind = PgError::Kind::auth;
  throw PgError("postgres " + where() + ": " + msg, kind);
}

void PgConnection::interrupt() {
  interrupted_ = true;
  if (socket_) {
    asio::error_code ec;
    socket_->descriptor.cancel(ec);
  }
}

std::string PgConnection::literal(std::string_view value) const {
  char* q = PQescapeLiteral(conn_, value.data(), value.size());
  if (!q) fail("quoting a value");
  std::string out(q);
  PQfreemem(q);
  return out;
}

bool PgConnection::broken() const { return interrupted_ || !conn_ || PQstatus(conn_) == CONNECTION_BAD; }

namespace {

/// Host names looked up: every address of each name becomes an entry of its own
/// (libpq tries them in turn, as it would have), in the three parallel lists
/// libpq takes. Empty when a host is a socket directory. Throws when a name
/// cannot be looked up.
struct Resolved {
  std::string hosts, addresses, ports;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  for (size_t at = 0;;) {
    size_t comma = s.find(',', at);
    out.push_back(s.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

asio::awaitable<Resolved> resolve_hosts(asio::any_io_executor ex, const std::string& hosts, const std::string& ports,
                                        std::chrono::milliseconds timeout) {
  std::vector<std::string> names = split_commas(hosts);
  std::vector<std::string> port_list = ports.empty() ? std::vector<std::string>{} : split_commas(ports);
  Resolved out;
  asio::ip::tcp::resolver resolver(ex);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (name.empty() || name[0] == '/' || name[0] == '@') co_return Resolved{};  // a Unix socket
    std::string port = port_list.empty() ? "5432" : port_list.size() == 1 ? port_list[0] : port_list[i];
    if (port.empty()) port = "5432";
    asio::steady_timer timer(ex, timeout);  // a lookup is not allowed longer than a connect
    timer.async_wait([&resolver](const asio::error_code& ec) {
      if (!ec) resolver.cancel();
    });
    asio::error_code ec;
    auto results = co_await resolver.async_resolve(name, port, asio::redirect_error(asio::use_awaitable, ec));
    timer.cancel();
    // Not handed back to libpq, whose own lookup would block the loop.
    if (ec == asio::error::operation_aborted)
      throw PgError("postgres " + name + ": no address for the host name within " + std::to_string(timeout.count()) +
                        " ms",
                    PgError::Kind::connection);
    if (ec || results.empty())
      throw PgError("postgres " + name + ": cannot look up the host name (" + (ec ? ec.message() : "no address") + ")",
                    PgError::Kind::connection);
    for (const auto& entry : results) {
      const char* sep = out.hosts.empty() ? "" : ",";
      out.hosts += sep + name;
      out.addresses += sep + entry.endpoint().address().to_string();
      out.ports += sep + port;
    }
  }
  co_return out;
}

}  // namespace

asio::awaitable<std::unique_ptr<PgConnection>> PgConnection::connect(asio::any_io_executor ex, std::string conninfo,
                                                                     std::chrono::milliseconds timeout) {
  std::unique_ptr<PgConnection> c(new PgConnection(ex));
  // A string libpq cannot read: its message would quote pieces of it (maybe the
  // password), so only say where to look.
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (parse_error) PQfreemem(parse_error);
  if (!parsed) throw PgError("postgres: the connection string cannot be read (check its quoting and % escapes)",
                             PgError::Kind::auth);
  std::string host, hostaddr, port;
  for (PQconninfoOption* o = parsed; o->keyword; ++o) {
    std::string_view k = o->keyword;
    std::string v = o->val ? o->val : "";
    if (k == "host") host = v;
    if (k == "hostaddr") hostaddr = v;
    if (k == "port") port = v;
  }
  PQconninfoFree(parsed);
  if (host.empty() && std::getenv("PGHOST")) host = std::getenv("PGHOST");
  if (hostaddr.empty() && std::getenv("PGHOSTADDR")) hostaddr = std::getenv("PGHOSTADDR");
  if (port.empty() && std::getenv("PGPORT")) port = std::getenv("PGPORT");
  // libpq looks host names up inside PQconnectStart, which would stop the loop
  // for as long as DNS takes: look them up here, asynchronously, and hand libpq
  // the addresses (host stays, for messages and TLS).
  Resolved resolved;
  if (hostaddr.empty() && !host.empty()) resolved = co_await resolve_hosts(ex, host, port, timeout);
  // Keepalives, so a peer that went silent is noticed in about a minute rather
  // than the system's two hours; the connection string can say otherwise.
  std::vector<const char*> keys = {"keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                                   "dbname"};
  std::vector<const char*> values = {"30", "10", "3", "60000", conninfo.c_str()};
  if (!resolved.addresses.empty()) {  // after dbname: they replace the string's host and port
    keys.insert(keys.end(), {"host", "hostaddr", "port"});
    values.insert(values.end(), {resolved.hosts.c_str(), resolved.addresses.c_str(), resolved.ports.c_str()});
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  c->conn_ = PQconnectStartParams(keys.data(), values.data(), 1);
  if (!c->conn_ || PQstatus(c->conn_) == CONNECTION_BAD) c->fail("connecting");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // libpq's connect_timeout only applies to blocking connects: the deadline is ours.
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED) c->fail("connecting");
    // The socket can change between polls (another address), and the new one can
    // reuse the old fd number: watch it afresh each time.
    c->socket_.reset();
    c->watch_socket();
    int ready = co_await c->wait(status == PGRES_POLLING_READING ? readable : writable, deadline);
    if (!ready) throw PgError("postgres " + c->where() + ": no connection within " +
                                  std::to_string(timeout.count()) + " ms",
                              PgError::Kind::connection);
    status = PQconnectPoll(c->conn_);
  }
  if (PQsetnonblocking(c->conn_, 1) != 0) c->fail("connecting");
  // Notices ("relation ... already exists, skipping") are not for the user's
  // terminal: libpq would print them to stderr.
  PQsetNoticeProcessor(c->conn_, [](void*, const char*) {}, nullptr);
  c->watch_socket();
  co_return c;
}

asio::awaitable<int> PgConnection::wait(int what, std::chrono::steady_clock::time_point deadline) {
  struct State {
    explicit State(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    int ready = 0;
  };
  if (interrupted_) throw PgError("postgres " + where() + ": interrupted", PgError::Kind::connection);
  auto state = std::make_shared<State>(ex_);
  state->timer.expires_at(deadline);
  auto on_ready = [state](int bit) {
    return [state, bit](const asio::error_code& ec) {
      if (!ec) state->ready |= bit;
      state->timer.cancel();
    };
  };
  if (what & readable) socket_->descriptor.async_wait(asio::posix::stream_descriptor::wait_read, on_ready(readable));
  if (what & writable) socket_->descriptor.async_wait(asio::posix::stream_descriptor::wait_write, on_ready(writable));
  asio::error_code ec;
  co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  socket_->descriptor.cancel(ec);  // the other direction, if it is still waited for
  if (interrupted_) throw PgError("postgres " + where() + ": interrupted", PgError::Kind::connection);
  co_return state->ready;
}

asio::awaitable<void> PgConnection::flush() {
  for (;;) {
    int r = PQflush(conn_);
    if (r == 0) co_return;
    if (r < 0) fail("sending");
    // The server may be sending while we send (an error, a notice): read it too,
    // or both sides could wait on full buffers.
    int ready = co_await wait(readable | writable, std::chrono::steady_clock::time_point::max());
    if ((ready & readable) && !PQconsumeInput(conn_)) fail("reading");
  }
}

asio::awaitable<std::vector<PgResult>> PgConnection::results(bool stop_at_copy) {
  std::vector<PgResult> out;
  for (;;) {
    if (!PQconsumeInput(conn_)) fail("reading");
    while (!PQisBusy(conn_)) {
      PGresult* r = PQgetResult(conn_);
      if (!r) co_return out;
      ExecStatusType s = PQresultStatus(r);
      out.emplace_back(r);
      if (stop_at_copy && (s == PGRES_COPY_IN || s == PGRES_COPY_OUT)) co_return out;
    }
    co_await wait(readable, std::chrono::steady_clock::time_point::max());
  }
}

namespace {
/// The last result, after checking none failed.
PgResult last_ok(std::vector<PgResult>& results) {
  for (const auto& r : results)
    if (failed(r.get())) throw result_error(r.get());
  if (results.empty()) return PgResult();
  return std::move(results.back());
}
}  // namespace

asio::awaitable<PgResult> PgConnection::exec(std::string_view sql) {
  std::string text(sql);
  if (!PQsendQuery(conn_, text.c_str())) fail("sending");
  co_await flush();
  std::vector<PgResult> rs = co_await results(false);
  co_return last_ok(rs);
}

asio::awaitable<PgResult> PgConnection::exec_params(std::string_view sql,
                                                    const std::vector<std::optional<std::string>>& params) {
  std::string text(sql);
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (!PQsendQueryParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                         0))
    fail("sending");
  co_await flush();
  std::vector<PgResult> rs = co_await results(false);
  co_return last_ok(rs);
}

asio::awaitable<void> PgConnection::start_copy(std::string_view sql) {
  std::string text(sql);
  if (!PQsendQuery(conn_, text.c_str())) fail("sending");
  co_await flush();
  std::vector<PgResult> start = co_await results(true);
  for (auto& r : start) {
    if (failed(r.get())) {
      PgError e = result_error(r.get());
      co_await results(false);  // drain to the end of the statement
      throw e;
    }
  }
}

asio::awaitable<PgResult> PgConnection::copy_in(std::string_view sql, std::string_view data) {
  std::vector<std::string_view> pieces{data};
  co_return co_await copy_in(sql, pieces);
}

asio::awaitable<PgResult> PgConnection::copy_in(std::string_view sql, const std::vector<std::string_view>& pieces) {
  co_await start_copy(sql);
  // Sent as the socket takes it: libpq queues a piece, a full queue is flushed.
  constexpr size_t kPiece = 256 * 1024;
  for (std::string_view data : pieces) {
    for (size_t at = 0; at < data.size();) {
      size_t n = std::min(kPiece, data.size() - at);
      int r = PQputCopyData(conn_, data.data() + at, static_cast<int>(n));
      if (r < 0) fail("sending COPY data");
      if (r == 0) {
        co_await flush();
        continue;
      }
      at += n;
    }
  }
  for (;;) {
    int r = PQputCopyEnd(conn_, nullptr);
    if (r < 0) fail("ending COPY");
    if (r == 1) break;
    co_await flush();
  }
  co_await flush();
  std::vector<PgResult> rs = co_await results(false);
  co_return last_ok(rs);
}

asio::awaitable<void> PgConnection::copy_out_start(std::string_view sql) { co_await start_copy(sql); }

asio::awaitable<bool> PgConnection::copy_out_rows(std::string& out, size_t max_rows, size_t& rows) {
  rows = 0;
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(conn_, &buf, 1);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      PQfreemem(buf);
      if (++rows >= max_rows) co_return true;
      continue;
    }
    if (n == 0) {  // nothing buffered
      if (rows > 0) co_return true;
      co_await wait(readable, std::chrono::steady_clock::time_point::max());
      if (!PQconsumeInput(conn_)) fail("reading");
      continue;
    }
    if (n == -2) fail("reading COPY data");
    // -1: the COPY is done; its result says whether it went well.
    std::vector<PgResult> rs = co_await results(false);
    last_ok(rs);
    co_return false;
  }
}

// ---------------------------------------------------------------- helpers


std::string redact_conninfo(std::string_view conninfo) {
  char* err = nullptr;
  std::string text(conninfo);
  PQconninfoOption* opts = PQconninfoParse(text.c_str(), &err);
  if (!opts) {
    if (err) PQfreemem(err);
    return "(an unreadable connection string)";
  }
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string_view k = o->keyword;
    if (k == "password") continue;
    if (!out.empty()) out += ' ';
    out += std::string(k) + "=" + o->val;
  }
  PQconninfoFree(opts);
  return out;
}

asio::awaitable<void> create_if_missing(PgConnection& c, const std::string& sql) {
  try {
    co_await c.exec(sql);
  } catch (const PgError& e) {
    if (e.sqlstate != "23505" && e.sqlstate != "42P07") throw;
  }
}

asio::awaitable<void> ensure_table(PgConnection& c, const std::string& name, const std::string& columns) {
  std::vector<std::optional<std::string>> params{name};
  std::string_view exists = "SELECT to_regclass($1) IS NOT NULL";
  PgResult e = co_await c.exec_params(exists, params);
  if (e.rows() == 1 && e.value(0, 0) == "t") co_return;
  std::string sql = "CREATE TABLE IF NOT EXISTS " + name + " " + columns;
  co_await create_if_missing(c, sql);
}

}  // namespace aetl::pg
