#pragma once
#include <cstdint>
#include <string_view>

namespace aetl::expr {

/// A value during evaluation. It never owns text: strings and JSON fragments point
/// into the bound record, the parser's buffers or the evaluator's arena, all of
/// which live until the next record is bound.
struct Value {
  enum class Type : uint8_t { null, boolean, integer, number, string, array, object };
  Type type = Type::null;
  bool missing = false;  ///< null because the field is absent (exists() tells them apart)
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;    ///< string: the unescaped text; array/object: the raw JSON
  std::string_view raw;  ///< the value's JSON text as written in the record, if it came from there

  static Value null_value() { return {}; }
  static Value boolean_value(bool v) {
    Value x;
    x.type = Type::boolean;
    x.b = v;
    return x;
  }
  static Value integer_value(int64_t v) {
    Value x;
    x.type = Type::integer;
    x.i = v;
    return x;
  }
  static Value number_value(double v) {
    Value x;
    x.type = Type::number;
    x.d = v;
    return x;
  }
  static Value string_value(std::string_view v) {
    Value x;
    x.type = Type::string;
    x.s = v;
    return x;
  }
  bool is_numeric() const { return type == Type::integer || type == Type::number; }
  double as_double() const { return type == Type::integer ? static_cast<double>(i) : d; }
  /// jq's rule: only false and null are false.
  bool truthy() const { return !(type == Type::null || (type == Type::boolean && !b)); }
};

}  // namespace aetl::expr
