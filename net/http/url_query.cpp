#include "net/http/url_query.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>

namespace aetl {

namespace {

std::string encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

}  // namespace

std::string with_query_param(std::string_view url, std::string_view name, std::string_view value) {
  size_t hash = url.find('#');
  std::string_view fragment = hash == std::string_view::npos ? std::string_view() : url.substr(hash);
  url = url.substr(0, hash);
  size_t q = url.find('?');
  std::string out(url.substr(0, q));
  std::string query;
  std::string encoded_name = encode(name);
  if (q != std::string_view::npos) {
    std::string_view rest = url.substr(q + 1);
    while (!rest.empty()) {
      size_t amp = rest.find('&');
      std::string_view item = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      std::string_view key = item.substr(0, item.find('='));
      if (key == name || key == encoded_name || item.empty()) continue;
      query += (query.empty() ? "" : "&") + std::string(item);
    }
  }
  query += (query.empty() ? "" : "&") + encoded_name + "=" + encode(value);
  return out + "?" + query + std::string(fragment);
}

std::optional<std::string> resolve_url(const std::string& base, const std::string& reference, std::string& error) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u) {
    error = "out of memory";
    return std::nullopt;
  }
  CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0);
  if (rc == CURLUE_OK) rc = curl_url_set(u.get(), CURLUPART_URL, reference.c_str(), 0);
  char* out = nullptr;
  if (rc == CURLUE_OK) rc = curl_url_get(u.get(), CURLUPART_URL, &out, 0);
  if (rc != CURLUE_OK) {
    error = curl_url_strerror(rc);
    return std::nullopt;
  }
  std::string result(out);
  curl_free(out);
  return result;
}

}  // namespace aetl
