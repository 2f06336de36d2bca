#include "commands/shared_http.h"

#include <memory>

#include "engine/shutdown.h"

namespace aetl {

void share_http_client(RunContext& run, HttpClientOptions options) {
  auto client = std::make_shared<std::unique_ptr<HttpClient>>();
  run.http = [&run, client, options]() -> HttpClient& {
    if (!*client) {
      *client = std::make_unique<HttpClient>(run.stage.io, options);
      run.stage.control.on_abort([client] { (*client)->abort_all(); });
    }
    return **client;
  };
}

HttpClientOptions pipeline_http_options() {
  HttpClientOptions o;
  o.user_agent = std::string("aetl/") + AETL_VERSION;
  o.max_bytes = 64 << 20;
  o.connection_cache = 256;
  return o;
}

}  // namespace aetl
