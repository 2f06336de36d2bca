#pragma once
// Internal to the expression language: the compiled form shared by parser and evaluator.
#include <memory>
#include <string>
#include <vector>

#include <re2/re2.h>

#include "expr/expression.h"

namespace aetl::expr {

enum class Op : uint8_t {
  literal, path, list, call,
  neg, not_, and_, or_,
  eq, ne, lt, le, gt, ge, in, not_in, match, not_match,
  add, sub, mul, div, mod,
};

enum class Fn : uint8_t { lower, upper, len, exists, now, unixtime, num, int_, str, trim, contains, starts_with,
                          ends_with, coalesce, type, if_ };

struct Node {
  Op op = Op::literal;
  Value literal;                      ///< Op::literal (strings point into `text`)
  std::string text;                   ///< storage for a string literal
  size_t slot = 0;                    ///< Op::path: index into ProgramImpl::paths
  Fn fn = Fn::lower;                  ///< Op::call
  std::vector<size_t> kids;           ///< operand node indices
  std::shared_ptr<const re2::RE2> re; ///< Op::match / not_match
};

/// Bit n for a key of n bytes (63 for 63 bytes or more).
inline uint64_t key_length_bit(size_t n) { return uint64_t{1} << (n < 63 ? n : 63); }

/// A trie of every path the program reads, so a record is walked once.
struct PathTrie {
  struct Entry {
    std::string key;   ///< object key (index < 0)
    long index = -1;   ///< array index
    int slot = -1;     ///< a path ends here: its slot
    std::vector<Entry> kids;
    uint64_t kid_key_lengths = 0;  ///< key_length_bit() of every kid's key: other keys are passed over at once
  };
  std::vector<Entry> roots;  ///< first segments
  uint64_t root_key_lengths = 0;
  bool whole = false;        ///< `$` is used: the record itself is a slot
  int whole_slot = -1;
};

struct ProgramImpl {
  std::vector<Node> nodes;
  std::vector<size_t> roots;  ///< per expression: its root node
  std::vector<Path> paths;    ///< per slot
  PathTrie trie;

  size_t slot_for(const Path& p);
};

}  // namespace aetl::expr
