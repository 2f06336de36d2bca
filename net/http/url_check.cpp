#include "net/http/url_check.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>

namespace aetl {

bool has_line_break_or_nul(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return true;
  return false;
}

std::string mask_passwords(std::string_view text) {
  std::string out;
  size_t done = 0;
  for (size_t scheme_end = text.find("://"); scheme_end != std::string_view::npos;
       scheme_end = text.find("://", scheme_end + 3)) {
    size_t start = scheme_end + 3;
    size_t scheme_start = scheme_end;
    while (scheme_start > 0 && std::isalpha(static_cast<unsigned char>(text[scheme_start - 1]))) --scheme_start;
    // redis:// URLs hold passwords as they come (a '/' or '?' in them, or the
    // password alone before the '@'): their user info ends at the URL's last '@'.
    bool redis = text.substr(scheme_start, scheme_end - scheme_start) == "redis";
    size_t end = text.find_first_of(redis ? "\"' \t\r\n" : "/?#\"' \t\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view authority = text.substr(start, end - start);
    size_t at = authority.rfind('@');
    if (at == std::string_view::npos) continue;
    size_t colon = authority.substr(0, at).find(':');
    if (colon == std::string_view::npos) {
      if (!redis || at == 0) continue;  // a user name alone (redis://secret@host: a password)
      out.append(text.substr(done, start - done)).append("***");
    } else {
      if (colon + 1 >= at) continue;  // no password
      out.append(text.substr(done, start + colon + 1 - done)).append("***");
    }
    done = start + at;
  }
  if (done == 0) return std::string(text);
  out.append(text.substr(done));
  return out;
}

std::optional<UrlParts> check_url(std::string_view url, std::string& error) {
  if (url.empty()) {
    error = "empty URL";
    return std::nullopt;
  }
  if (has_line_break_or_nul(url)) {
    error = "URL contains CR, LF or NUL";
    return std::nullopt;
  }
  for (unsigned char c : url) {
    if (c < 0x20 || c == 0x7f) {
      error = "URL contains a control character";
      return std::nullopt;
    }
    if (c == ' ') {
      error = "URL contains a space (encode it as %20)";
      return std::nullopt;
    }
  }
  if (url.find("://") == std::string_view::npos) {
    error = "URL has no scheme (expected http:// or https://)";
    return std::nullopt;
  }
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> h(curl_url(), &curl_url_cleanup);
  std::string text(url);
  CURLUcode rc = curl_url_set(h.get(), CURLUPART_URL, text.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    error = std::string("malformed URL: ") + curl_url_strerror(rc);
    return std::nullopt;
  }
  auto part = [&](CURLUPart which, unsigned flags = 0) -> std::string {
    char* value = nullptr;
    if (curl_url_get(h.get(), which, &value, flags) != CURLUE_OK || !value) return {};
    std::string out(value);
    curl_free(value);
    return out;
  };
  UrlParts parts;
  parts.scheme = part(CURLUPART_SCHEME);
  if (parts.scheme != "http" && parts.scheme != "https") {
    error = "unsupported scheme '" + parts.scheme + "' (only http and https)";
    return std::nullopt;
  }
  parts.host = part(CURLUPART_HOST);
  for (auto& c : parts.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (parts.host.empty()) {
    error = "URL has no host";
    return std::nullopt;
  }
  parts.port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  parts.path = part(CURLUPART_PATH);
  parts.query = part(CURLUPART_QUERY);
  return parts;
}

}  // namespace aetl
