#include "sources/http/page_position.h"

#include <cstdlib>
#include <iterator>

#include "engine/json_scan.h"
#include "engine/json_writer.h"

namespace aetl {

namespace {

void optional_string(JsonWriter& w, std::string_view key, const std::optional<std::string>& v) {
  w.key(key);
  if (v) w.string(*v);
  else w.null();
}

std::optional<std::string> read_optional(std::string_view raw) {
  if (raw.size() < 2 || raw[0] != '"') return std::nullopt;
  return json_unescape(raw.substr(1, raw.size() - 2));
}

bool whole_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace

std::string PagePosition::to_json() const {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("page").number(static_cast<int64_t>(index)).key("before").number(static_cast<int64_t>(before));
  w.key("offset").number(static_cast<int64_t>(offset)).key("url").string(url);
  optional_string(w, "cursor", cursor);
  optional_string(w, "since", since);
  optional_string(w, "high", high);
  w.key("done").boolean(done);
  if (!previous.empty()) w.key("previous").string(previous);
  if (loop) w.key("loop").string(*loop).key("loop_page").number(static_cast<int64_t>(loop_page));
  w.end_object();
  return out;
}

std::optional<PagePosition> PagePosition::from_json(std::string_view text) {
  PagePosition p;
  int seen = 0;
  bool ok = for_each_member(text, 0, [&](const JsonMember& m) {
    std::string_view v = text.substr(m.value_begin, m.value_end - m.value_begin);
    std::string number(v);
    if (m.raw_key == "page") p.index = std::strtoull(number.c_str(), nullptr, 10), ++seen;
    if (m.raw_key == "before") p.before = std::strtoull(number.c_str(), nullptr, 10), ++seen;
    if (m.raw_key == "offset") p.offset = std::strtoull(number.c_str(), nullptr, 10);
    if (m.raw_key == "url") p.url = read_optional(v).value_or("");
    if (m.raw_key == "cursor") p.cursor = read_optional(v);
    if (m.raw_key == "since") p.since = read_optional(v);
    if (m.raw_key == "high") p.high = read_optional(v);
    if (m.raw_key == "done") p.done = v == "true";
    if (m.raw_key == "previous") p.previous = read_optional(v).value_or("");
    if (m.raw_key == "loop") p.loop = read_optional(v);
    if (m.raw_key == "loop_page") p.loop_page = std::strtoull(number.c_str(), nullptr, 10);
  });
  if (!ok || seen != 2 || p.index == 0) return std::nullopt;
  return p;
}

std::string records_digest(const std::vector<std::string>& records) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (const auto& r : records) {
    for (unsigned char c : r) mix(c);
    mix('\n');
  }
  static const char* hex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<size_t>(i)] = hex[h & 15];
  return out;
}

bool comes_after(const std::string& a, const std::string& b) {
  double x = 0, y = 0;
  if (whole_number(a, x) && whole_number(b, y)) return x > y;
  return a > b;
}

void PageLog::add(uint64_t first, const PagePosition& position) {
  std::string json = position.to_json();
  std::lock_guard lock(mutex_);
  pages_[first] = std::move(json);
}

std::string PageLog::name_for(uint64_t handled) const {
  std::lock_guard lock(mutex_);
  auto it = pages_.upper_bound(handled + 1);
  if (it != pages_.begin()) --it;  // else: only pages past it (cannot happen), the first is safe
  return it == pages_.end() ? base_ : base_ + it->second;
}

void PageLog::forget_before(uint64_t handled) {
  // A checkpoint taken a while ago (a sink's write in flight) may still ask for
  // a page a little before the current one: keep some; when one is gone, the
  // first page is named instead (its records are read again, and skipped).
  constexpr size_t kKept = 16;
  std::lock_guard lock(mutex_);
  if (pages_.size() <= 2 * kKept) return;
  auto current = pages_.upper_bound(handled + 1);
  auto from = std::next(pages_.begin());
  size_t before = static_cast<size_t>(std::distance(from, current));
  if (before <= kKept) return;
  pages_.erase(from, std::next(from, static_cast<long>(before - kKept)));
}

}  // namespace aetl
