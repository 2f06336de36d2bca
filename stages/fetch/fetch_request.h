#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http/http_types.h"
#include "net/http/url_check.h"

namespace aetl {

/// Settings that apply to every request line (afetch -X, -H, --data).
struct RequestDefaults {
  std::string method = "GET";
  std::vector<std::string> headers;  ///< "Name: value", checked
  std::optional<std::string> body;
};

/// One input line turned into a request.
struct ParsedRequest {
  HttpRequest request;
  UrlParts url;
  std::string key;      ///< identity for --state: method, URL and a hash of the body (see secret_free_key)
  std::string id_json;  ///< the object's "id" value as raw JSON, echoed in the result
};

enum class LineKind { request, skip };

/// Classifies and parses one afetch input line: blank lines and lines starting
/// with '#' are skipped; a line starting with '{' is a JSON request object
/// {"url", "method", "headers", "body", "id"}; anything else is a URL. Leading and
/// trailing blanks are ignored. On a malformed line returns nullopt with `error` set.
std::optional<ParsedRequest> parse_request_line(std::string_view line, const RequestDefaults& defaults,
                                                LineKind& kind, std::string& error);

/// A --state key that holds no secret: `key` itself if no URL in it has a password,
/// else the key with passwords masked plus " ~" and the SHA-256 of the whole key
/// (the same request still gets the same key; the password cannot be read back).
std::string secret_free_key(const std::string& key);

/// A request's identity in a ledger (--state, `ledger:`): method, URL and a hash of
/// the body, passed through secret_free_key. Headers are not part of it.
std::string request_key(const HttpRequest& request);

/// Checks a "Name: value" header; returns an error message or empty.
std::string check_header(std::string_view header);

/// Checks an HTTP method token; returns an error message or empty.
std::string check_method(std::string_view method);

}  // namespace aetl
