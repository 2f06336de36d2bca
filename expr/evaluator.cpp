// Binds records with simdjson On-Demand (one pass, only the named fields decoded)
// and evaluates the compiled expressions over the extracted values.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <deque>

#include <simdjson.h>

#include "expr/ast.h"
#include "engine/parsed_record.h"
#include "engine/json_scan.h"
#include "engine/json_writer.h"

namespace aetl::expr {

namespace od = simdjson::ondemand;

struct EvaluatorImpl {
  EvaluatorImpl(const ProgramImpl& p, bool exact) : prog(p), slots(p.paths.size()), exact_numbers(exact) {
    // str() shows numbers as written in the record, and a list holding fields is
    // spelled with them as written ([x] == [1] compares text): only the text has that.
    for (const auto& n : p.nodes) {
      if (n.op == Op::call && n.fn == Fn::str) from_parse = false;
      if (n.op == Op::list)
        for (size_t k : n.kids)
          if (p.nodes[k].op != Op::literal) from_parse = false;
    }
    mark_computed_slots();
  }

  const ProgramImpl& prog;
  od::parser parser;
  od::parser aux_parser;  // for arrays met by `in` and len()
  std::string buf;        // a copy of the record, padded for simdjson, when it has no room of its own
  std::string_view text;  // the record being read (in `buf` or in the caller's string)
  std::string aux_buf;
  std::vector<Value> slots;
  std::deque<std::string> arena;
  size_t arena_used = 0;
  std::string error;

  std::string& scratch() {
    if (arena_used == arena.size()) arena.emplace_back();
    std::string& s = arena[arena_used++];
    s.clear();
    return s;
  }

  bool bind(std::string_view json, bool padded, std::string& err);
  /// Slots whose value an expression computes with (compares, adds, converts), not
  /// only copies, shows or tests for presence.
  std::vector<char> computed;
  std::string number_error;  // why the record bound last cannot be read
  void mark_computed_slots();
  /// False, with number_error set, if `v` is a number no double holds (1e309)
  /// and slot `slot` is computed with.
  bool check_range(const Value& v, size_t slot);
  bool from_parse = true;  // bind(ParsedRecord) may read the decoder's parse
  bool exact_numbers;      // numbers print as written: a parse's doubles need the text
  void reset_slots();
  /// Slots reset and `$` set for a record read from a parse or from values.
  void begin_record(std::string_view json) {
    reset_slots();
    text = json;
    if (prog.trie.whole) {
      Value& w = slots[static_cast<size_t>(prog.trie.whole_slot)];
      w = Value{};
      w.type = Value::Type::object;
      w.s = w.raw = json;
    }
  }
  /// Reads the slots from a DOM parse; false when a value needs its text (an
  /// array or object: they compare and print as written), so the text is read.
  bool walk_dom(simdjson::dom::object obj, const std::vector<PathTrie::Entry>& level, uint64_t key_lengths);
  bool capture_dom(simdjson::dom::element v, const PathTrie::Entry& entry);
  bool walk_object(od::object obj, const std::vector<PathTrie::Entry>& level, uint64_t key_lengths);
  bool walk_array(od::array arr, const std::vector<PathTrie::Entry>& level);
  bool capture(od::value v, const PathTrie::Entry& entry);
  bool read_value(od::value v, Value& out);

  Value eval(size_t node);
  Value call(const Node& n);
  bool equal(const Value& a, const Value& b);
  int compare(const Value& a, const Value& b, bool& comparable);
  bool contains_value(const Value& hay, const Value& needle);
  template <class Fn>
  bool for_each_element(std::string_view raw_array, Fn&& fn);
  std::string_view json_of(const Value& v);
};

namespace {

/// Key equality, with the first byte compared before calling memcmp (most keys
/// of a record differ there, or in length).
inline bool same_key(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || (!a.empty() && a[0] != b[0])) return false;
  if (a.size() > 16) return std::memcmp(a.data(), b.data(), a.size()) == 0;
  for (size_t i = 1; i < a.size(); ++i)  // short keys: no call
    if (a[i] != b[i]) return false;
  return true;
}

std::string_view trim_token(std::string_view t) {
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
  return t;
}

}  // namespace

void EvaluatorImpl::mark_computed_slots() {
  std::vector<char> plain(prog.nodes.size(), 0);  // read only as written
  for (size_t r : prog.roots) plain[r] = 1;
  for (const auto& n : prog.nodes)
    if (n.op == Op::call && (n.fn == Fn::exists || n.fn == Fn::str || n.fn == Fn::type))
      for (size_t k : n.kids) plain[k] = 1;
  computed.assign(prog.paths.size(), 0);
  for (size_t i = 0; i < prog.nodes.size(); ++i)
    if (prog.nodes[i].op == Op::path && !plain[i]) computed[prog.nodes[i].slot] = 1;
}

bool EvaluatorImpl::check_range(const Value& v, size_t slot) {
  if (v.type != Value::Type::number || !std::isinf(v.d) || v.raw.empty() || !computed[slot]) return true;
  std::string_view written = v.raw.substr(0, 40);
  number_error = "number " + std::string(written) + (written.size() < v.raw.size() ? "..." : "") +
                 " is beyond what an expression computes with (about ±1.8e308)";
  return false;
}

namespace {

/// A string simdjson refuses to unescape (a lone \udcXX escape), decoded here.
bool unescape_token(std::string_view token, std::string& out) {
  return token.size() >= 2 && json_unescape_to(token.substr(1, token.size() - 2), out);
}

}  // namespace

bool EvaluatorImpl::read_value(od::value v, Value& out) {
  od::json_type type;
  if (v.type().get(type)) return false;
  std::string_view token = trim_token(v.raw_json_token());
  out = Value{};
  out.raw = token;
  switch (type) {
    case od::json_type::string: {
      out.type = Value::Type::string;
      if (!v.get_string().get(out.s)) return true;
      std::string& s = scratch();
      if (!unescape_token(token, s)) return false;
      out.s = s;
      return true;
    }
    case od::json_type::number: {
      od::number_type nt;
      if (v.get_number_type().get(nt)) return false;
      if (nt == od::number_type::signed_integer && !v.get_int64().get(out.i)) {
        out.type = Value::Type::integer;
        return true;
      }
      out.type = Value::Type::number;
      uint64_t u = 0;
      if (nt == od::number_type::unsigned_integer && !v.get_uint64().get(u)) {
        out.d = static_cast<double>(u);
        return true;
      }
      if (v.get_double().get(out.d)) {  // beyond 64 bits: approximate, like jq; beyond a double: ±inf
        out.d = std::strtod(std::string(token).c_str(), nullptr);
      }
      return true;
    }
    case od::json_type::boolean:
      out.type = Value::Type::boolean;
      return !v.get_bool().get(out.b);
    case od::json_type::null:
      out.type = Value::Type::null;
      return true;
    case od::json_type::array:
    case od::json_type::object: {
      size_t start = static_cast<size_t>(token.data() - text.data());
      size_t end = json_value_end(text, start);
      out.type = type == od::json_type::array ? Value::Type::array : Value::Type::object;
      out.s = out.raw = text.substr(start, end - start);
      return true;
    }
  }
  return false;
}

bool EvaluatorImpl::capture(od::value v, const PathTrie::Entry& entry) {
  if (entry.slot >= 0) {
    if (!read_value(v, slots[static_cast<size_t>(entry.slot)])) return false;
    Value& got = slots[static_cast<size_t>(entry.slot)];
    if (!check_range(got, static_cast<size_t>(entry.slot))) return false;
    if (entry.kids.empty() || (got.type != Value::Type::object && got.type != Value::Type::array)) return true;
  }
  if (entry.kids.empty()) return true;
  od::json_type type;
  if (v.type().get(type)) return false;
  if (type == od::json_type::object) {
    od::object obj;
    if (v.get_object().get(obj)) return false;
    return walk_object(obj, entry.kids, entry.kid_key_lengths);
  }
  if (type == od::json_type::array) {
    od::array arr;
    if (v.get_array().get(arr)) return false;
    return walk_array(arr, entry.kids);
  }
  return true;  // a scalar where the path goes deeper: the deeper fields are missing
}

bool EvaluatorImpl::walk_object(od::object obj, const std::vector<PathTrie::Entry>& level, uint64_t key_lengths) {
  size_t wanted = 0;
  for (const auto& e : level) wanted += e.index < 0;
  if (wanted == 0) return true;
  // Which entries were met: a duplicated key counts once, the first one wins.
  uint64_t seen_small = 0;
  std::vector<char> seen_large(level.size() > 64 ? level.size() : 0, 0);
  auto seen = [&](size_t i) -> bool { return level.size() > 64 ? seen_large[i] : (seen_small >> i) & 1; };
  auto mark = [&](size_t i) {
    if (level.size() > 64) seen_large[i] = 1;
    else seen_small |= uint64_t{1} << i;
  };
  size_t found = 0;
  for (auto field_result : obj) {
    if (found == wanted) break;  // every named field found: the rest is not read
    od::field field;
    if (std::move(field_result).get(field)) return false;
    // The key as written, up to its closing quote; keys with escapes (\u00df,
    // \") are compared decoded, the rest byte for byte (fast).
    const char* k = field.key().raw();
    const char* p = k;
    bool escaped = false;
    while (*p != '"') {
      if (*p == '\\') {
        escaped = true;
        ++p;
      }
      ++p;
    }
    std::string_view key(k, static_cast<size_t>(p - k));
    if (escaped && field.unescaped_key().get(key)) return false;
    if (!(key_lengths & key_length_bit(key.size()))) continue;  // no wanted key is that long
    for (size_t i = 0; i < level.size(); ++i) {
      const auto& entry = level[i];
      if (entry.index >= 0 || seen(i) || !same_key(key, entry.key)) continue;
      mark(i);
      if (!capture(field.value(), entry)) return false;
      ++found;
      break;
    }
  }
  return true;
}

bool EvaluatorImpl::walk_array(od::array arr, const std::vector<PathTrie::Entry>& level) {
  long max_index = -1;
  for (const auto& e : level) max_index = std::max(max_index, e.index);
  if (max_index < 0) return true;
  long i = 0;
  for (auto element : arr) {
    od::value v;
    if (std::move(element).get(v)) return false;
    for (const auto& entry : level) {
      if (entry.index != i) continue;
      if (!capture(v, entry)) return false;
      break;
    }
    if (++i > max_index) break;
  }
  return true;
}

void EvaluatorImpl::reset_slots() {
  arena_used = 0;
  for (auto& s : slots) {
    s = Value{};
    s.missing = true;
  }
}

bool EvaluatorImpl::capture_dom(simdjson::dom::element v, const PathTrie::Entry& entry) {
  namespace dom = simdjson::dom;
  dom::element_type type = v.type();
  if (type == dom::element_type::ARRAY || type == dom::element_type::OBJECT) {
    if (entry.slot >= 0) return false;  // the value itself is read: it needs its text
    if (type == dom::element_type::OBJECT) return walk_dom(v.get_object().value_unsafe(), entry.kids, entry.kid_key_lengths);
    dom::array arr = v.get_array().value_unsafe();
    for (const auto& kid : entry.kids) {
      if (kid.index < 0) continue;
      dom::element x;
      if (arr.at(static_cast<size_t>(kid.index)).get(x)) continue;  // past the end: missing
      if (!capture_dom(x, kid)) return false;
    }
    return true;
  }
  if (entry.slot < 0) return true;  // a scalar where the path goes deeper: the deeper fields are missing
  Value& out = slots[static_cast<size_t>(entry.slot)];
  out = Value{};
  switch (type) {
    case dom::element_type::STRING: out.type = Value::Type::string; out.s = v.get_string().value_unsafe(); break;
    case dom::element_type::INT64: out.type = Value::Type::integer; out.i = v.get_int64().value_unsafe(); break;
    case dom::element_type::UINT64:
      if (exact_numbers) return false;  // the parse kept no text for it
      out.type = Value::Type::number;
      out.d = static_cast<double>(v.get_uint64().value_unsafe());
      break;
    case dom::element_type::DOUBLE:
      if (exact_numbers) return false;  // 1.50, 1e3 and -0 print otherwise from the double
      out.type = Value::Type::number;
      out.d = v.get_double().value_unsafe();
      break;
    case dom::element_type::BOOL: out.type = Value::Type::boolean; out.b = v.get_bool().value_unsafe(); break;
    default: out.type = Value::Type::null; break;
  }
  return true;
}

bool EvaluatorImpl::walk_dom(simdjson::dom::object obj, const std::vector<PathTrie::Entry>& level, uint64_t key_lengths) {
  size_t wanted = 0;
  for (const auto& e : level) wanted += e.index < 0;
  if (wanted == 0) return true;
  // As walk_object: a duplicated key counts once, the first one wins.
  uint64_t seen_small = 0;
  std::vector<char> seen_large(level.size() > 64 ? level.size() : 0, 0);
  size_t found = 0;
  for (auto field : obj) {
    if (found == wanted) break;
    if (!(key_lengths & key_length_bit(field.key.size()))) continue;  // no wanted key is that long
    for (size_t i = 0; i < level.size(); ++i) {
      const auto& entry = level[i];
      bool seen = level.size() > 64 ? seen_large[i] : (seen_small >> i) & 1;
      if (entry.index >= 0 || seen || !same_key(field.key, entry.key)) continue;
      if (level.size() > 64) seen_large[i] = 1;
      else seen_small |= uint64_t{1} << i;
      if (!capture_dom(field.value, entry)) return false;
      ++found;
      break;
    }
  }
  return true;
}

bool EvaluatorImpl::bind(std::string_view json, bool padded, std::string& err) {
  reset_slots();
  number_error.clear();
  if (padded) {
    text = json;  // read in place: the bytes after it are readable (simdjson only looks)
  } else {
    buf.assign(json);
    buf.resize(json.size() + simdjson::SIMDJSON_PADDING);
    text = std::string_view(buf.data(), json.size());
  }
  od::document doc;
  auto e = parser.iterate(text.data(), text.size(), text.size() + simdjson::SIMDJSON_PADDING).get(doc);
  od::object obj;
  if (!e) e = doc.get_object().get(obj);
  if (e) {
    err = e == simdjson::INCORRECT_TYPE ? "not a JSON object" : std::string("invalid JSON: ") + simdjson::error_message(e);
    return false;
  }
  if (prog.trie.whole) {
    Value& w = slots[static_cast<size_t>(prog.trie.whole_slot)];
    w = Value{};
    w.type = Value::Type::object;
    w.s = w.raw = text;
  }
  if (!walk_object(obj, prog.trie.roots, prog.trie.root_key_lengths)) {
    err = number_error.empty() ? "invalid JSON" : number_error;
    return false;
  }
  return true;
}

template <class Fn>
bool EvaluatorImpl::for_each_element(std::string_view raw_array, Fn&& fn) {
  aux_buf.assign(raw_array);
  aux_buf.resize(raw_array.size() + simdjson::SIMDJSON_PADDING);
  od::document doc;
  if (aux_parser.iterate(aux_buf.data(), raw_array.size(), aux_buf.size()).get(doc)) return false;
  od::array arr;
  if (doc.get_array().get(arr)) return false;
  // Elements are read into values whose text lives in aux_buf: copy what must survive.
  for (auto element : arr) {
    od::value v;
    if (std::move(element).get(v)) return false;
    Value x;
    od::json_type type;
    if (v.type().get(type)) return false;
    std::string_view token = trim_token(v.raw_json_token());
    if (type == od::json_type::object || type == od::json_type::array) {
      size_t start = static_cast<size_t>(token.data() - aux_buf.data());
      size_t end = json_value_end(std::string_view(aux_buf.data(), raw_array.size()), start);
      x.type = type == od::json_type::array ? Value::Type::array : Value::Type::object;
      x.s = x.raw = std::string_view(aux_buf.data() + start, end - start);
    } else if (type == od::json_type::string) {
      x.type = Value::Type::string;
      if (v.get_string().get(x.s)) {
        std::string& s = scratch();
        if (!unescape_token(token, s)) return false;
        x.s = s;
      }
      x.raw = token;
    } else if (type == od::json_type::number) {
      double d = 0;
      int64_t i = 0;
      if (!v.get_int64().get(i)) {
        x = Value::integer_value(i);
      } else if (!v.get_double().get(d)) {
        x = Value::number_value(d);
      } else {
        x = Value::number_value(std::strtod(std::string(token).c_str(), nullptr));
      }
      x.raw = token;
    } else if (type == od::json_type::boolean) {
      bool b = false;
      if (v.get_bool().get(b)) return false;
      x = Value::boolean_value(b);
    }
    if (fn(x)) return true;
  }
  return true;
}

bool EvaluatorImpl::equal(const Value& a, const Value& b) {
  if (a.is_numeric() && b.is_numeric()) {
    if (a.type == Value::Type::integer && b.type == Value::Type::integer) return a.i == b.i;
    return a.as_double() == b.as_double();
  }
  if (a.type != b.type) return false;
  switch (a.type) {
    case Value::Type::null: return true;
    case Value::Type::boolean: return a.b == b.b;
    default: return a.s == b.s;  // strings; arrays and objects compare as written
  }
}

int EvaluatorImpl::compare(const Value& a, const Value& b, bool& comparable) {
  comparable = true;
  if (a.is_numeric() && b.is_numeric()) {
    if (a.type == Value::Type::integer && b.type == Value::Type::integer) return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
    double x = a.as_double(), y = b.as_double();
    if (std::isnan(x) || std::isnan(y)) {
      comparable = false;
      return 0;
    }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.type == Value::Type::string && b.type == Value::Type::string) {
    int c = a.s.compare(b.s);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  comparable = false;
  return 0;
}

bool EvaluatorImpl::contains_value(const Value& hay, const Value& needle) {
  if (hay.type == Value::Type::string) {
    return needle.type == Value::Type::string && hay.s.find(needle.s) != std::string_view::npos;
  }
  if (hay.type == Value::Type::array) {
    bool found = false;
    for_each_element(hay.s, [&](const Value& x) { return found = equal(x, needle); });
    return found;
  }
  if (hay.type == Value::Type::object && needle.type == Value::Type::string) {  // a key of the object
    bool found = false;
    for_each_member(hay.s, 0, [&](const JsonMember& m) {
      if (m.raw_key == needle.s) found = true;
    });
    return found;
  }
  return false;
}

std::string_view EvaluatorImpl::json_of(const Value& v) {
  if (!v.raw.empty()) return v.raw;
  std::string& s = scratch();
  append_value_json(v, s);
  return s;
}

namespace {

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string_view trim_ascii(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<Value> parse_number(std::string_view s) {
  s = trim_ascii(s);
  if (s.empty()) return std::nullopt;
  const char* b = s.data();
  const char* e = b + s.size();
  if (*b == '+') ++b;
  int64_t i = 0;
  auto [p, ec] = std::from_chars(b, e, i);
  if (ec == std::errc() && p == e) return Value::integer_value(i);
  double d = 0;
  auto [q, ec2] = std::from_chars(b, e, d);
  if (ec2 == std::errc() && q == e) return Value::number_value(d);
  return std::nullopt;
}

}  // namespace

Value EvaluatorImpl::call(const Node& n) {
  auto arg = [&](size_t k) { return eval(n.kids[k]); };
  switch (n.fn) {
    case Fn::lower:
    case Fn::upper: {
      Value v = arg(0);
      if (v.type != Value::Type::string) return Value::null_value();
      std::string& s = scratch();
      s.assign(v.s);
      for (char& c : s) c = static_cast<char>(n.fn == Fn::lower ? std::tolower(static_cast<unsigned char>(c))
                                                                  : std::toupper(static_cast<unsigned char>(c)));
      return Value::string_value(s);
    }
    case Fn::len: {
      Value v = arg(0);
      if (v.type == Value::Type::string) return Value::integer_value(static_cast<int64_t>(utf8_length(v.s)));
      if (v.type == Value::Type::array) {
        int64_t count = 0;
        for_each_element(v.s, [&](const Value&) {
          ++count;
          return false;
        });
        return Value::integer_value(count);
      }
      if (v.type == Value::Type::object) {
        int64_t count = 0;
        for_each_member(v.s, 0, [&](const JsonMember&) { ++count; });
        return Value::integer_value(count);
      }
      return Value::null_value();
    }
    case Fn::exists: return Value::boolean_value(!slots[prog.nodes[n.kids[0]].slot].missing);
    case Fn::now: {
      auto now = std::chrono::system_clock::now();
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
      std::time_t secs = static_cast<std::time_t>(ms / 1000);
      std::tm tm{};
      gmtime_r(&secs, &tm);
      char text[96];  // room for any int the fields could hold: no truncation to warn of
      std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
      std::string& s = scratch();
      s = text;
      return Value::string_value(s);
    }
    case Fn::unixtime: {
      auto now = std::chrono::system_clock::now().time_since_epoch();
      return Value::number_value(std::chrono::duration<double>(now).count());
    }
    case Fn::num:
    case Fn::int_: {
      Value v = arg(0);
      std::optional<Value> out;
      if (v.is_numeric()) out = v;
      else if (v.type == Value::Type::string) out = parse_number(v.s);
      else if (v.type == Value::Type::boolean) out = Value::integer_value(v.b ? 1 : 0);
      if (!out) return Value::null_value();
      out->raw = {};
      if (n.fn == Fn::int_ && out->type == Value::Type::number) {
        if (!std::isfinite(out->d) || std::fabs(out->d) >= 9.2e18) return Value::null_value();
        return Value::integer_value(static_cast<int64_t>(out->d));
      }
      return *out;
    }
    case Fn::str: {
      Value v = arg(0);
      if (v.type == Value::Type::string) {
        v.raw = {};
        return v;
      }
      if (v.type == Value::Type::null) return v;
      return Value::string_value(json_of(v));
    }
    case Fn::trim: {
      Value v = arg(0);
      if (v.type != Value::Type::string) return Value::null_value();
      return Value::string_value(trim_ascii(v.s));
    }
    case Fn::contains: {
      Value hay = arg(0);
      Value needle = arg(1);
      return Value::boolean_value(contains_value(hay, needle));
    }
    case Fn::starts_with:
    case Fn::ends_with: {
      Value s = arg(0);
      Value p = arg(1);
      if (s.type != Value::Type::string || p.type != Value::Type::string) return Value::boolean_value(false);
      bool r = n.fn == Fn::starts_with ? s.s.substr(0, p.s.size()) == p.s
                                       : s.s.size() >= p.s.size() && s.s.substr(s.s.size() - p.s.size()) == p.s;
      return Value::boolean_value(r);
    }
    case Fn::coalesce: {
      for (size_t k = 0; k < n.kids.size(); ++k) {
        Value v = arg(k);
        if (v.type != Value::Type::null) return v;
      }
      return Value::null_value();
    }
    case Fn::if_: return arg(0).truthy() ? arg(1) : arg(2);
    case Fn::type: {
      static const char* names[] = {"null", "boolean", "number", "number", "string", "array", "object"};
      return Value::string_value(names[static_cast<int>(arg(0).type)]);
    }
  }
  return Value::null_value();
}

Value EvaluatorImpl::eval(size_t index) {
  const Node& n = prog.nodes[index];
  switch (n.op) {
    case Op::literal: return n.literal;
    case Op::path: return slots[n.slot];
    case Op::list: {
      std::string& s = scratch();
      s = "[";
      for (size_t k = 0; k < n.kids.size(); ++k) {
        if (k) s += ',';
        Value v = eval(n.kids[k]);
        append_value_json(v, s);
      }
      s += ']';
      Value v;
      v.type = Value::Type::array;
      v.s = v.raw = s;
      return v;
    }
    case Op::call: return call(n);
    case Op::neg: {
      Value v = eval(n.kids[0]);
      if (v.type == Value::Type::integer && v.i != INT64_MIN) return Value::integer_value(-v.i);
      if (v.is_numeric()) return Value::number_value(-v.as_double());
      return Value::null_value();
    }
    case Op::not_: return Value::boolean_value(!eval(n.kids[0]).truthy());
    case Op::and_: return Value::boolean_value(eval(n.kids[0]).truthy() && eval(n.kids[1]).truthy());
    case Op::or_: return Value::boolean_value(eval(n.kids[0]).truthy() || eval(n.kids[1]).truthy());
    case Op::eq: return Value::boolean_value(equal(eval(n.kids[0]), eval(n.kids[1])));
    case Op::ne: return Value::boolean_value(!equal(eval(n.kids[0]), eval(n.kids[1])));
    case Op::lt:
    case Op::le:
    case Op::gt:
    case Op::ge: {
      Value a = eval(n.kids[0]);
      Value b = eval(n.kids[1]);
      bool comparable = false;
      int c = compare(a, b, comparable);
      if (!comparable) return Value::boolean_value(false);
      bool r = n.op == Op::lt ? c < 0 : n.op == Op::le ? c <= 0 : n.op == Op::gt ? c > 0 : c >= 0;
      return Value::boolean_value(r);
    }
    case Op::in:
    case Op::not_in: {
      Value needle = eval(n.kids[0]);
      const Node& rhs = prog.nodes[n.kids[1]];
      bool found = false;
      if (rhs.op == Op::list) {  // literal list: no JSON round trip
        for (size_t k : rhs.kids)
          if (equal(eval(k), needle)) {
            found = true;
            break;
          }
      } else {
        found = contains_value(eval(n.kids[1]), needle);
      }
      return Value::boolean_value(n.op == Op::in ? found : !found);
    }
    case Op::match:
    case Op::not_match: {
      Value v = eval(n.kids[0]);
      bool m = v.type == Value::Type::string &&
               re2::RE2::PartialMatch(re2::StringPiece(v.s.data(), v.s.size()), *n.re);
      return Value::boolean_value(n.op == Op::match ? m : !m);
    }
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div:
    case Op::mod: {
      Value a = eval(n.kids[0]);
      Value b = eval(n.kids[1]);
      if (n.op == Op::add && a.type == Value::Type::string && b.type == Value::Type::string) {
        std::string& s = scratch();
        s.reserve(a.s.size() + b.s.size());
        s.assign(a.s).append(b.s);
        return Value::string_value(s);
      }
      if (!a.is_numeric() || !b.is_numeric()) return Value::null_value();
      if (a.type == Value::Type::integer && b.type == Value::Type::integer && n.op != Op::div) {
        int64_t r = 0;
        bool overflow = false;
        switch (n.op) {
          case Op::add: overflow = __builtin_add_overflow(a.i, b.i, &r); break;
          case Op::sub: overflow = __builtin_sub_overflow(a.i, b.i, &r); break;
          case Op::mul: overflow = __builtin_mul_overflow(a.i, b.i, &r); break;
          default:
            if (b.i == 0 || (a.i == INT64_MIN && b.i == -1)) return Value::null_value();
            r = a.i % b.i;
        }
        if (!overflow) return Value::integer_value(r);
      }
      double x = a.as_double(), y = b.as_double();
      switch (n.op) {
        case Op::add: return Value::number_value(x + y);
        case Op::sub: return Value::number_value(x - y);
        case Op::mul: return Value::number_value(x * y);
        case Op::div:
          if (y == 0) return Value::null_value();
          if (a.type == Value::Type::integer && b.type == Value::Type::integer && a.i % b.i == 0 &&
              !(a.i == INT64_MIN && b.i == -1))
            return Value::integer_value(a.i / b.i);
          return Value::number_value(x / y);
        default: return y == 0 ? Value::null_value() : Value::number_value(std::fmod(x, y));
      }
    }
  }
  return Value::null_value();
}

void append_value_json(const Value& v, std::string& out) {
  // A parse keeps no escapes, so a string written with them ("caf\u00e9", "\/")
  // is re-escaped: the same output whichever way the record was read.
  // An integer prints one way too ("-0" is 0 in a parse).
  bool escaped = v.type == Value::Type::string && !v.raw.empty() && v.raw.find('\\') != std::string_view::npos;
  if (!v.raw.empty() && !escaped && v.type != Value::Type::integer) {
    out.append(v.raw);
    return;
  }
  switch (v.type) {
    case Value::Type::null: out += "null"; return;
    case Value::Type::boolean: out += v.b ? "true" : "false"; return;
    case Value::Type::integer: {
      char tmp[24];
      auto [p, ec] = std::to_chars(tmp, tmp + sizeof tmp, v.i);
      out.append(tmp, p);
      return;
    }
    case Value::Type::number: {
      if (!std::isfinite(v.d)) {
        out += "null";
        return;
      }
      char tmp[32];
      auto [p, ec] = std::to_chars(tmp, tmp + sizeof tmp, v.d);
      out.append(tmp, p);
      return;
    }
    case Value::Type::string: append_json_string(out, v.s); return;
    case Value::Type::array:
    case Value::Type::object: out.append(v.s); return;
  }
}

Evaluator::Evaluator(const Program& program, bool exact_numbers)
    : impl_(std::make_unique<EvaluatorImpl>(program.impl(), exact_numbers)) {}
Evaluator::~Evaluator() = default;

bool Evaluator::bind(std::string_view json, std::string& error) { return impl_->bind(json, false, error); }

bool Evaluator::bind(std::string_view json, bool padded, std::string& error) {
  return impl_->bind(json, padded, error);
}

bool Evaluator::bind(const ParsedRecord& parsed, std::string_view json, bool padded, std::string& error) {
  EvaluatorImpl& e = *impl_;
  simdjson::dom::object obj;
  if (!e.from_parse || parsed.root.get_object().get(obj)) return e.bind(json, padded, error);
  e.begin_record(json);
  if (e.walk_dom(obj, e.prog.trie.roots, e.prog.trie.root_key_lengths)) return true;
  return e.bind(json, padded, error);  // a value needs its text
}

bool Evaluator::bind(const ProjectedRecord& p, std::string_view json, bool padded, std::string& error) {
  EvaluatorImpl& e = *impl_;
  if (!e.from_parse || !p.names) return e.bind(json, padded, error);
  e.begin_record(json);
  const std::vector<std::string>& names = *p.names;
  for (const auto& entry : e.prog.trie.roots) {
    if (entry.index >= 0) continue;  // an index into an object: missing
    size_t k = 0;
    while (k < names.size() && names[k] != entry.key) ++k;
    if (k == names.size()) continue;  // not one of the fields: missing
    const Value& v = p.values[k];
    bool nested = v.type == Value::Type::object || v.type == Value::Type::array;
    if (nested && !entry.kids.empty()) return e.bind(json, padded, error);  // a path into it: read the text
    if (entry.slot < 0) continue;
    if (!e.check_range(v, static_cast<size_t>(entry.slot))) {
      error = e.number_error;
      return false;
    }
    e.slots[static_cast<size_t>(entry.slot)] = v;
  }
  return true;
}

bool Evaluator::bind(const std::string& json, std::string& error) {
  bool room = json.capacity() - json.size() >= simdjson::SIMDJSON_PADDING;
  return impl_->bind(json, room, error);
}

Value Evaluator::eval(size_t index) { return impl_->eval(impl_->prog.roots[index]); }

void Evaluator::write_json(size_t index, std::string& out) {
  const Node& root = impl_->prog.nodes[impl_->prog.roots[index]];
  if (root.op == Op::path) {
    const Value& v = impl_->slots[root.slot];
    if (v.missing) out += "null";
    else append_value_json(v, out);
    return;
  }
  append_value_json(impl_->eval(impl_->prog.roots[index]), out);
}

}  // namespace aetl::expr
