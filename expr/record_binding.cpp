// Binds records with simdjson On-Demand (one pass, only the named fields decoded),
// or from a DOM parse or a projection that came with the record.
#include "expr/evaluator_impl.h"
#include "engine/json_memory.h"

namespace aetl::expr {

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
  auto e = parse_or_throw(
      parser, [&] { return parser.iterate(text.data(), text.size(), text.size() + simdjson::SIMDJSON_PADDING).get(doc); });
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


}  // namespace aetl::expr
