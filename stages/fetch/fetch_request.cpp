#include "stages/fetch/fetch_request.h"

#include <simdjson.h>

#include <cstdio>

#include "engine/hash.h"
#include "engine/json_memory.h"

namespace aetl {
namespace {

bool is_token_char(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string header_name(std::string_view header) {
  std::string name(header.substr(0, header.find(':')));
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

/// Adds `header`, replacing an earlier one of the same name.
void set_header(std::vector<std::string>& headers, std::string header) {
  std::string name = header_name(header);
  for (auto& h : headers) {
    if (header_name(h) == name) {
      h = std::move(header);
      return;
    }
  }
  headers.push_back(std::move(header));
}

}  // namespace

std::string request_key(const HttpRequest& request) {
  std::string key = request.method + " " + request.url;
  if (request.body) key += " #" + fnv1a_hex(*request.body);
  return secret_free_key(key);
}

namespace {

bool finish_request(ParsedRequest& out, std::string& error) {
  auto parts = check_url(out.request.url, error);
  if (!parts) return false;
  out.url = std::move(*parts);
  out.key = request_key(out.request);
  return true;
}

std::optional<ParsedRequest> parse_object(std::string_view line, const RequestDefaults& defaults,
                                          std::string& error) {
  using namespace simdjson;
  ParsedRequest out;
  out.request.method = defaults.method;
  out.request.headers = defaults.headers;
  out.request.body = defaults.body;
  bool have_url = false;
  bool body_is_json = false;
  bool method_given = false;

  thread_local dom::parser parser;
  dom::element root;
  if (auto e = parse_or_throw(parser, [&] { return parser.parse(line.data(), line.size()).get(root); })) {
    error = std::string("invalid JSON: ") + error_message(e);
    return std::nullopt;
  }
  dom::object obj;
  if (root.get_object().get(obj)) {
    error = "invalid JSON: expected an object";
    return std::nullopt;
  }
  auto fail = [&](std::string msg) {
    error = std::move(msg);
    return std::nullopt;
  };
  for (auto [key, value] : obj) {
    if (key == "url") {
      std::string_view url;
      if (value.get_string().get(url)) return fail("\"url\" must be a string");
      out.request.url = std::string(url);
      have_url = true;
    } else if (key == "method") {
      std::string_view method;
      if (value.get_string().get(method)) return fail("\"method\" must be a string");
      if (auto e = check_method(method); !e.empty()) return fail(e);
      out.request.method = std::string(method);
      method_given = true;
    } else if (key == "headers") {
      dom::object headers;
      if (value.get_object().get(headers)) return fail("\"headers\" must be an object of strings");
      for (auto [name, hv] : headers) {
        std::string_view text;
        if (hv.get_string().get(text)) return fail("header '" + std::string(name) + "' must be a string");
        std::string header = std::string(name) + ": " + std::string(text);
        if (auto e = check_header(header); !e.empty()) return fail(e);
        set_header(out.request.headers, std::move(header));
      }
    } else if (key == "body") {
      if (value.is_string()) {
        out.request.body = std::string(std::string_view(value));
      } else if (value.is_null()) {
        out.request.body.reset();
      } else {
        out.request.body = minify(value);
        body_is_json = true;
      }
    } else if (key == "id") {
      out.id_json = minify(value);
    } else {
      return fail("unknown field '" + std::string(key) +
                  "' (expected url, method, headers, body, id; put your own data in \"id\")");
    }
  }
  if (!have_url) return fail("missing \"url\"");
  if (body_is_json) {
    bool has_type = false;
    for (auto& h : out.request.headers) has_type = has_type || header_name(h) == "content-type";
    if (!has_type) out.request.headers.push_back("Content-Type: application/json");
  }
  if (out.request.body && !method_given && !defaults.body && out.request.method == "GET")
    out.request.method = "POST";  // like curl --data: a body without a method is a POST
  if (!finish_request(out, error)) return std::nullopt;
  return out;
}

}  // namespace

std::string secret_free_key(const std::string& key) {
  std::string masked = mask_passwords(key);
  if (masked == key) return key;
  return masked + " ~" + sha256_hex(key);
}

std::string check_method(std::string_view method) {
  if (method.empty()) return "empty HTTP method";
  for (unsigned char c : method)
    if (!is_token_char(c)) return "invalid HTTP method '" + std::string(method) + "'";
  return {};
}

std::string check_header(std::string_view header) {
  auto colon = header.find(':');
  if (colon == std::string_view::npos || colon == 0) return "header must look like 'Name: value'";
  for (unsigned char c : header.substr(0, colon))
    if (!is_token_char(c)) return "invalid character in header name '" + std::string(header.substr(0, colon)) + "'";
  if (has_line_break_or_nul(header)) return "header contains CR, LF or NUL";
  return {};
}

std::optional<ParsedRequest> parse_request_line(std::string_view line, const RequestDefaults& defaults,
                                                LineKind& kind, std::string& error) {
  std::string_view text = trim(line);
  kind = LineKind::request;
  if (text.empty() || text.front() == '#') {
    kind = LineKind::skip;
    return std::nullopt;
  }
  if (text.front() == '{') return parse_object(text, defaults, error);
  ParsedRequest out;
  out.request.url = std::string(text);
  out.request.method = defaults.method;
  out.request.headers = defaults.headers;
  out.request.body = defaults.body;
  if (!finish_request(out, error)) return std::nullopt;
  return out;
}

}  // namespace aetl
