#pragma once
#include "net/http/http_client.h"
#include "run/run_context.h"

namespace aetl {

/// Gives the run one HTTP client for all its parts (fetch stages, lines sources
/// reading URLs), made with `options` on first use and aborted with the run.
void share_http_client(RunContext& run, HttpClientOptions options);

/// What a pipeline's client uses: responses land in fields, so they are held in
/// memory (at most 64 MiB each), with room for many hosts' connections.
HttpClientOptions pipeline_http_options();

}  // namespace aetl
