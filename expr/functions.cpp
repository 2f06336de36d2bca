// The expression language's functions and comparisons over bound values.
#include "expr/evaluator_impl.h"
#include "engine/json_memory.h"

namespace aetl::expr {
template <class Fn>
bool EvaluatorImpl::for_each_element(std::string_view raw_array, Fn&& fn) {
  aux_buf.assign(raw_array);
  aux_buf.resize(raw_array.size() + simdjson::SIMDJSON_PADDING);
  od::document doc;
  auto e = parse_or_throw(aux_parser, [&] { return aux_parser.iterate(aux_buf.data(), raw_array.size(), aux_buf.size()).get(doc); });
  if (e) return false;
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


}  // namespace aetl::expr
