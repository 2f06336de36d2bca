#pragma once
#include <boost/asio/awaitable.hpp>

#include "engine/asio.h"

#include "net/http/http_types.h"

namespace aetl {

/// One HTTP attempt, awaitable: all the fetch policy needs of a client. The real
/// one is HttpClient (the curl multi handle on the loop); unit tests script fakes.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  /// Performs one attempt of `request` on the loop. Suspends until it completes,
  /// fails (response.curl_code, .error) or is cancelled by the run (response.aborted).
  /// `body` receives the body (nullptr: discard); begin() is called before it.
  virtual asio::awaitable<HttpResponse> perform(const HttpRequest& request, BodyConsumer* body) = 0;
};

}  // namespace aetl
