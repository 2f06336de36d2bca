#include "stages/fetch/request_entries.h"

#include "engine/json_writer.h"

namespace aetl {
namespace {

class RequestEntry final : public RecordStep {
 public:
  explicit RequestEntry(RequestDefaults defaults) : defaults_(std::move(defaults)) {}
  Verdict apply(size_t, StepRecord& rec, std::string& error) override {
    LineKind kind = LineKind::request;
    auto parsed = parse_request_line(rec.text, defaults_, kind, error);
    if (kind == LineKind::skip) return Verdict::drop;
    if (!parsed) return Verdict::fail;
    rec.replace(request_object_json(*parsed));
    return Verdict::keep;
  }

 private:
  RequestDefaults defaults_;
};

}  // namespace

std::string request_object_json(const ParsedRequest& parsed) {
  const HttpRequest& r = parsed.request;
  std::string out = "{\"url\":";
  append_json_string(out, r.url);
  out += ",\"method\":";  // always: a body without a method would be read as a POST
  append_json_string(out, r.method);
  if (!r.headers.empty()) {
    out += ",\"headers\":{";
    for (size_t i = 0; i < r.headers.size(); ++i) {
      const std::string& h = r.headers[i];
      size_t colon = h.find(':');
      std::string_view name = std::string_view(h).substr(0, colon);
      std::string_view value = colon == std::string::npos ? std::string_view() : std::string_view(h).substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (i) out += ',';
      append_json_string(out, name);
      out += ':';
      append_json_string(out, value);
    }
    out += '}';
  }
  if (r.body) {
    out += ",\"body\":";
    append_json_string(out, *r.body);
  }
  if (!parsed.id_json.empty()) {
    out += ",\"id\":";
    out += parsed.id_json;
  }
  out += '}';
  return out;
}

std::shared_ptr<RecordStep> request_entry_step(RequestDefaults defaults) {
  return std::make_shared<RequestEntry>(std::move(defaults));
}

}  // namespace aetl
