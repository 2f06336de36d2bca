// Evaluates the compiled expressions over a bound record's values.
#include "expr/evaluator_impl.h"

namespace aetl::expr {

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
