#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace aetl {

/// The parts of a checked URL the engine needs.
struct UrlParts {
  std::string scheme;  ///< "http" or "https"
  std::string host;
  std::string port;    ///< explicit or the scheme's default
  std::string path;    ///< as in the URL, dot segments removed, still %-encoded
  std::string query;   ///< without '?', empty if none
  std::string host_key() const { return host + ":" + port; }
};

/// Parses an absolute http(s) URL with libcurl's URL parser. On failure returns
/// nullopt and sets `error` to a one-line cause (control characters, unsupported
/// scheme, missing host, malformed).
std::optional<UrlParts> check_url(std::string_view url, std::string& error);

/// `text` with the password of every URL in it masked: "http://u:pw@h/x" becomes
/// "http://u:***@h/x". Result lines, logs and errors show URLs only so.
std::string mask_passwords(std::string_view text);

/// True if `s` holds CR, LF or NUL (header injection).
bool has_line_break_or_nul(std::string_view s);

}  // namespace aetl
