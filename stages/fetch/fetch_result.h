#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "net/http/http_types.h"
#include "stages/fetch/fetch_request.h"

namespace aetl {

/// How a response body is embedded in the result line.
enum class BodyMode { none, text, json };

/// Everything one result line is made of.
struct FetchResult {
  const ParsedRequest* request = nullptr;
  const HttpResponse* response = nullptr;
  int attempts = 0;
  bool ok = false;
  std::string error;                ///< empty: null
  std::optional<std::string> path;  ///< saved body, relative to -o DIR
  BodyMode body_mode = BodyMode::none;
  const std::string* body = nullptr;  ///< the body, for text/json
  std::optional<std::string> body_json;  ///< json mode: the body minified, if it parsed
  bool insecure = false;
};

/// json mode: parses `*result.body`, fills body_json, and turns an ok result into a
/// failure when the body is not JSON. Call before deciding whether to keep the body.
void check_json_body(FetchResult& result);

/// The result line (DESIGN.md §5): url, status, ok, final_url, http_version,
/// content_type, bytes, attempts, time_ms{total,connect,ttfb}, path, error, then
/// id, body and insecure when they apply. No trailing newline.
std::string fetch_result_json(const FetchResult& result);

/// The line for an input line that could not be turned into a request.
std::string input_error_json(std::string_view line, std::string_view input_name, uint64_t line_no,
                             std::string_view error);

}  // namespace aetl
