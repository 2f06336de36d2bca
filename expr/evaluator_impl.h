#pragma once
// Internal to expr/: the evaluator's state, shared by the files that bind records
// (record_binding.cpp), call functions (functions.cpp) and evaluate (evaluator.cpp).
// simdjson stays in here; nothing outside expr/ includes this.
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

/// A JSON token without the whitespace simdjson leaves behind it.
inline std::string_view trim_token(std::string_view t) {
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
  return t;
}

/// A string simdjson refuses to unescape (a lone \udcXX escape), decoded here.
inline bool unescape_token(std::string_view token, std::string& out) {
  return token.size() >= 2 && json_unescape_to(token.substr(1, token.size() - 2), out);
}

}  // namespace aetl::expr
