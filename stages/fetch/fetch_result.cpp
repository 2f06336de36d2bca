#include "stages/fetch/fetch_result.h"

#include <simdjson.h>

#include "net/http/url_check.h"
#include "engine/json_writer.h"
#include "engine/json_memory.h"

namespace aetl {
namespace {

/// Parses `body` as JSON; on success returns it minified, else sets `error`.
std::optional<std::string> minified_json(const std::string& body, std::string& error) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element element;
  if (auto e = parse_or_throw(parser, [&] { return parser.parse(body).get(element); })) {
    error = std::string("body is not valid JSON: ") + simdjson::error_message(e);
    return std::nullopt;
  }
  return simdjson::minify(element);
}

}  // namespace

void check_json_body(FetchResult& r) {
  if (!r.body || r.body_mode != BodyMode::json) return;
  std::string error;
  r.body_json = minified_json(*r.body, error);
  if (!r.body_json && r.ok) {
    r.ok = false;
    r.error = error;
  }
}

std::string fetch_result_json(const FetchResult& r) {
  const HttpResponse& resp = *r.response;
  const std::optional<std::string>& embedded = r.body_json;
  std::string out;
  out.reserve(320);
  JsonWriter w(out);
  w.begin_object();
  w.key("url").string(mask_passwords(r.request->request.url));
  w.key("status");
  resp.status > 0 ? w.number(int64_t{resp.status}) : w.null();
  w.key("ok").boolean(r.ok);
  w.key("final_url");
  resp.final_url.empty() ? w.null() : w.string(mask_passwords(resp.final_url));
  w.key("http_version");
  resp.http_version.empty() ? w.null() : w.string(resp.http_version);
  w.key("content_type");
  resp.content_type.empty() ? w.null() : w.string(resp.content_type);
  w.key("bytes").number(resp.bytes);
  w.key("attempts").number(int64_t{r.attempts});
  w.key("time_ms").begin_object();
  w.key("total").number(resp.total_ms, 1);
  w.key("connect").number(resp.connect_ms, 1);
  w.key("ttfb").number(resp.ttfb_ms, 1);
  w.end_object();
  w.key("path");
  r.path ? w.string(*r.path) : w.null();
  w.key("error");
  r.error.empty() ? w.null() : w.string(mask_passwords(r.error));
  if (!r.request->id_json.empty()) w.key("id").raw(r.request->id_json);
  if (r.body && r.body_mode == BodyMode::text) w.key("body").string(*r.body);
  if (r.body && r.body_mode == BodyMode::json) {
    w.key("body");
    embedded ? w.raw(*embedded) : w.null();
  }
  if (r.insecure) w.key("insecure").boolean(true);
  w.end_object();
  return out;
}

std::string input_error_json(std::string_view line, std::string_view input_name, uint64_t line_no,
                             std::string_view error) {
  constexpr size_t kShown = 2048;
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("url").string(mask_passwords(line.substr(0, kShown)));
  w.key("status").null();
  w.key("ok").boolean(false);
  w.key("error").string(error);
  w.key("input").string(std::string(input_name) + ":" + std::to_string(line_no));
  w.end_object();
  return out;
}

}  // namespace aetl
