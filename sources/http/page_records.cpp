#include "sources/http/page_records.h"

#include "engine/json_memory.h"
#include "engine/json_scan.h"

namespace aetl {

std::optional<JsonPath> parse_json_path(std::string_view text, std::string& error) {
  JsonPath path;
  path.text = std::string(text);
  if (text == "." || text.empty()) return path;
  std::string_view rest = text;
  if (rest.size() >= 3 && rest.substr(rest.size() - 3) == "[*]") rest.remove_suffix(3);
  while (true) {
    size_t dot = rest.find('.');
    std::string_view key = rest.substr(0, dot);
    if (key.empty() || key.find_first_of("[]*\"") != std::string_view::npos) {
      error = "'" + std::string(text) + "' is not a path of keys separated by dots (items, data.results[*])";
      return std::nullopt;
    }
    path.keys.emplace_back(key);
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return path;
}

std::optional<std::string_view> find_json_path(std::string_view doc, const JsonPath& path) {
  size_t begin = json_skip_blanks(doc, 0);
  size_t end = json_value_end(doc, begin);
  for (const auto& key : path.keys) {
    bool found = false;
    bool object = for_each_member(doc, begin, [&](const JsonMember& m) {
      if (found || json_unescape(m.raw_key) != key) return;
      found = true;
      begin = m.value_begin;
      end = m.value_end;
    });
    if (!object || !found) return std::nullopt;
  }
  return doc.substr(begin, end - begin);
}

std::optional<std::string> json_scalar_text(std::string_view raw) {
  if (raw.empty() || raw == "null" || raw == "\"\"" || raw[0] == '{' || raw[0] == '[') return std::nullopt;
  if (raw[0] == '"') return json_unescape(raw.substr(1, raw.size() - 2));
  return std::string(raw);
}

std::string read_page(const std::string& body, const JsonPath& records, const JsonPath* next, PageContent& out) {
  out = PageContent{};
  {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element root;
    auto e = parse_or_throw(parser, [&] { return parser.parse(body).get(root); });
    if (e) return "not JSON (" + std::string(simdjson::error_message(e)) + ")";
  }
  auto at = find_json_path(body, records);
  if (!at) return "no `" + records.text + "` in the response";
  std::string_view v = *at;
  if (v == "null") {
  } else if (v[0] == '{') {
    out.records.emplace_back(v);
  } else if (v[0] == '[') {
    size_t pos = json_skip_blanks(v, 1);
    while (pos < v.size() && v[pos] != ']') {
      size_t end = json_value_end(v, pos);
      std::string_view element = v.substr(pos, end - pos);
      if (element[0] == '{') out.records.emplace_back(element);
      else out.records.push_back("{\"value\":" + std::string(element) + "}");
      pos = json_skip_blanks(v, end);
      if (pos < v.size() && v[pos] == ',') pos = json_skip_blanks(v, pos + 1);
    }
  } else {
    return "`" + records.text + "` is not an array or an object";
  }
  if (next)
    if (auto n = find_json_path(body, *next)) out.next = json_scalar_text(*n);
  return {};
}

}  // namespace aetl
