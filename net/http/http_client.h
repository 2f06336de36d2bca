#pragma once
#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

#include "net/http/http_transport.h"
#include "net/http/http_types.h"

namespace aetl {

class CurlMulti;

/// HTTP on the run's one curl multi handle: connection reuse, DNS cache and
/// HTTP/2 multiplexing come from sharing it. Only http and https are allowed,
/// also for redirects; Authorization and Cookie headers are not sent to another
/// host, port or scheme after a redirect (libcurl's rules, tested in tests/).
class HttpClient final : public HttpTransport {
 public:
  HttpClient(asio::io_context& io, HttpClientOptions options);
  ~HttpClient();

  /// Performs one attempt of `request`. Suspends until it completes, fails, or the
  /// client is aborted (response.aborted). `body` receives the body (nullptr: discard).
  asio::awaitable<HttpResponse> perform(const HttpRequest& request, BodyConsumer* body) override;

  /// Cancels every transfer in flight; their perform() calls return aborted.
  void abort_all();

  size_t in_flight() const;
  const HttpClientOptions& options() const { return options_; }

 private:
  class Transfer;
  void* take_easy();
  void give_back_easy(void* easy);
  void configure_easy(void* easy);

  asio::io_context& io_;
  HttpClientOptions options_;
  std::unique_ptr<CurlMulti> multi_;
  std::vector<void*> free_easy_;
  std::vector<Transfer*> active_;
};

}  // namespace aetl
