#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>

#include "engine/asio.h"

#include "net/ws/ws_connection.h"

namespace ws = aetl::ws;
using tcp = asio::ip::tcp;

namespace {

struct Outcome {
  bool done = false;
  std::string error;
};

asio::awaitable<void> connect_into(ws::WsConnection& c, Outcome& out) {
  try {
    co_await c.connect();
  } catch (const ws::WsError& e) {
    out.error = e.what();
  }
  out.done = true;
}

/// A TCP listener on 127.0.0.1 that reads the upgrade request and never answers it.
struct SilentServer {
  explicit SilentServer(asio::io_context& io) : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}), peer(io) {}
  ws::WsOptions options() const {
    ws::WsOptions o;
    o.url = ws::parse_ws_url("ws://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/feed");
    o.connect_timeout = std::chrono::seconds(30);
    return o;
  }
  tcp::acceptor acceptor;
  tcp::socket peer;
  asio::streambuf request;
};

}  // namespace

TEST_CASE("close() or abort() while the upgrade goes unanswered ends connect() at once", "[ws]") {
  const bool abort = GENERATE(false, true);
  asio::io_context io;
  SilentServer server(io);
  ws::WsConnection conn(io.get_executor(), server.options());
  Outcome out;
  bool asked = false;
  server.acceptor.async_accept(server.peer, [&](const asio::error_code& ec) {
    REQUIRE_FALSE(ec);
    asio::async_read_until(server.peer, server.request, "\r\n\r\n", [&](const asio::error_code& e, size_t) {
      asked = !e;  // the request is in: the connection waits for the answer
      if (abort) conn.abort();
      else conn.close();
    });
  });
  asio::co_spawn(io, connect_into(conn, out), asio::detached);
  auto t0 = std::chrono::steady_clock::now();
  while (!out.done && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) io.run_one_for(std::chrono::seconds(1));
  CHECK(asked);
  REQUIRE(out.done);
  CHECK(out.error == "stopped while connecting");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("a connection closed before connect() never reaches the server", "[ws]") {
  asio::io_context io;
  SilentServer server(io);
  ws::WsConnection conn(io.get_executor(), server.options());
  conn.close();
  Outcome out;
  bool accepted = false;
  server.acceptor.async_accept(server.peer, [&](const asio::error_code& ec) { accepted = !ec; });
  asio::co_spawn(io, connect_into(conn, out), asio::detached);
  io.run_for(std::chrono::milliseconds(300));
  REQUIRE(out.done);
  CHECK(out.error == "stopped while connecting");
  CHECK_FALSE(accepted);
}
