#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "net/connection_pool.h"
#include "net/pg/pg_connection.h"

namespace aetl::pg {

/// PostgreSQL connections made from one connection string (net/connection_pool.h).
class PgPool : public ConnectionPool<PgConnection> {
 public:
  PgPool(asio::any_io_executor ex, std::string conninfo, size_t min, size_t max, std::chrono::milliseconds timeout)
      : ConnectionPool<PgConnection>(
            ex, [ex, conninfo, timeout] { return PgConnection::connect(ex, conninfo, timeout); }, min, max) {}
};

}  // namespace aetl::pg
