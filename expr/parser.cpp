// The expression language's lexer and recursive-descent parser.
#include <cctype>
#include <charconv>
#include <cstring>
#include <map>

#include "expr/ast.h"

namespace aetl::expr {
namespace {

struct Token {
  enum Kind { end, number, string, ident, punct } kind = end;
  std::string text;  // punct: the operator; ident: the name; string: unescaped
  size_t offset = 0;
  bool is_int = false;
  int64_t i = 0;
  double d = 0;
};

const std::map<std::string, Fn, std::less<>>& functions() {
  static const std::map<std::string, Fn, std::less<>> table = {
      {"lower", Fn::lower},     {"upper", Fn::upper},       {"len", Fn::len},
      {"exists", Fn::exists},   {"now", Fn::now},           {"unixtime", Fn::unixtime},
      {"num", Fn::num},         {"int", Fn::int_},          {"str", Fn::str},
      {"trim", Fn::trim},       {"contains", Fn::contains}, {"starts_with", Fn::starts_with},
      {"ends_with", Fn::ends_with}, {"coalesce", Fn::coalesce}, {"type", Fn::type},
      {"if", Fn::if_},
  };
  return table;
}

struct Arity {
  int min, max;
};
Arity arity(Fn fn) {
  switch (fn) {
    case Fn::now:
    case Fn::unixtime: return {0, 0};
    case Fn::contains:
    case Fn::starts_with:
    case Fn::ends_with: return {2, 2};
    case Fn::coalesce: return {1, 16};
    case Fn::if_: return {3, 3};
    default: return {1, 1};
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  Token next() {
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    Token t;
    t.offset = pos_;
    if (pos_ >= src_.size()) return t;
    char c = src_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && pos_ + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))))
      return number(t);
    if (c == '"' || c == '\'') return string(t, c);
    // Names: letters, digits, '_' and any non-ASCII (UTF-8) letters such as "straße".
    auto name_start = [](unsigned char x) { return std::isalpha(x) || x == '_' || x >= 0x80; };
    auto name_char = [](unsigned char x) { return std::isalnum(x) || x == '_' || x >= 0x80; };
    if (name_start(static_cast<unsigned char>(c))) {
      size_t start = pos_;
      while (pos_ < src_.size() && name_char(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      t.kind = Token::ident;
      t.text = std::string(src_.substr(start, pos_ - start));
      return t;
    }
    static const char* two[] = {"==", "!=", "<=", ">=", "=~", "!~", "&&", "||"};
    for (const char* op : two) {
      if (src_.substr(pos_, 2) == op) {
        pos_ += 2;
        t.kind = Token::punct;
        t.text = op;
        return t;
      }
    }
    if (std::strchr("<>!+-*/%()[],.$", c)) {
      ++pos_;
      t.kind = Token::punct;
      t.text = std::string(1, c);
      return t;
    }
    if (c == '=') throw ParseError("'=' is not an operator: use '==' to compare", pos_);
    throw ParseError(std::string("unexpected character '") + c + "'", pos_);
  }

 private:
  Token number(Token& t) {
    size_t start = pos_;
    bool is_float = false;
    while (pos_ < src_.size()) {
      char c = src_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E') {
        is_float = true;
        ++pos_;
        if ((c == 'e' || c == 'E') && pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
      } else {
        break;
      }
    }
    std::string_view text = src_.substr(start, pos_ - start);
    t.kind = Token::number;
    t.text = std::string(text);
    const char* b = text.data();
    const char* e = b + text.size();
    if (!is_float) {
      auto [p, ec] = std::from_chars(b, e, t.i);
      if (ec == std::errc() && p == e) {
        t.is_int = true;
        return t;
      }
    }
    auto [p, ec] = std::from_chars(b, e, t.d);
    if (ec != std::errc() || p != e) throw ParseError("bad number '" + t.text + "'", start);
    return t;
  }

  Token string(Token& t, char quote) {
    ++pos_;
    t.kind = Token::string;
    while (pos_ < src_.size() && src_[pos_] != quote) {
      char c = src_[pos_++];
      if (c != '\\') {
        t.text += c;
        continue;
      }
      if (pos_ >= src_.size()) break;
      char e = src_[pos_++];
      switch (e) {
        case 'n': t.text += '\n'; break;
        case 't': t.text += '\t'; break;
        case 'r': t.text += '\r'; break;
        case '\\': t.text += '\\'; break;
        case '\'': t.text += '\''; break;
        case '"': t.text += '"'; break;
        default:  // keep other escapes as written: regular expressions need \d, \. ...
          t.text += '\\';
          t.text += e;
      }
    }
    if (pos_ >= src_.size()) throw ParseError("unterminated string", t.offset);
    ++pos_;
    return t;
  }

  std::string_view src_;
  size_t pos_ = 0;
};

class Parser {
 public:
  Parser(std::string_view src, ProgramImpl& prog) : lex_(src), prog_(prog) { advance(); }

  size_t parse_all() {
    size_t root = parse_or();
    if (tok_.kind != Token::end) fail("unexpected '" + tok_.text + "' after the end of the expression");
    return root;
  }

  Path parse_path_only() {
    Path p;
    if (tok_.kind == Token::punct && tok_.text == "$") {
      advance();
    } else if (tok_.kind == Token::ident) {
      p.segments.push_back({tok_.text, -1});
      advance();
    } else {
      fail("expected a field name");
    }
    parse_segments(p);
    if (tok_.kind != Token::end) fail("unexpected '" + tok_.text + "' in a field path");
    return p;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) { throw ParseError(msg, tok_.offset); }
  void advance() { tok_ = lex_.next(); }
  bool is_punct(const char* p) const { return tok_.kind == Token::punct && tok_.text == p; }
  bool is_word(const char* w) const { return tok_.kind == Token::ident && tok_.text == w; }
  void expect(const char* p) {
    if (!is_punct(p)) fail(std::string("expected '") + p + "'" + (tok_.kind == Token::end ? " at the end" : ""));
    advance();
  }

  size_t add(Node n) {
    prog_.nodes.push_back(std::move(n));
    return prog_.nodes.size() - 1;
  }
  size_t binary(Op op, size_t a, size_t b) {
    Node n;
    n.op = op;
    n.kids = {a, b};
    return add(std::move(n));
  }

  size_t parse_or() {
    size_t left = parse_and();
    while (is_word("or") || is_punct("||")) {
      advance();
      left = binary(Op::or_, left, parse_and());
    }
    return left;
  }
  size_t parse_and() {
    size_t left = parse_not();
    while (is_word("and") || is_punct("&&")) {
      advance();
      left = binary(Op::and_, left, parse_not());
    }
    return left;
  }
  size_t parse_not() {
    if (is_word("not") || is_punct("!")) {
      advance();
      Node n;
      n.op = Op::not_;
      n.kids = {parse_not()};
      return add(std::move(n));
    }
    return parse_cmp();
  }
  size_t parse_cmp() {
    size_t left = parse_add();
    static const std::pair<const char*, Op> ops[] = {{"==", Op::eq}, {"!=", Op::ne}, {"<=", Op::le}, {">=", Op::ge},
                                                     {"<", Op::lt},  {">", Op::gt}};
    for (auto [text, op] : ops) {
      if (is_punct(text)) {
        advance();
        return binary(op, left, parse_add());
      }
    }
    if (is_word("in")) {
      advance();
      return binary(Op::in, left, parse_add());
    }
    if (is_word("not")) {  // `x not in [..]`
      advance();
      if (!is_word("in")) fail("expected 'in' after 'not'");
      advance();
      return binary(Op::not_in, left, parse_add());
    }
    if (is_punct("=~") || is_punct("!~")) {
      Op op = is_punct("=~") ? Op::match : Op::not_match;
      advance();
      if (tok_.kind != Token::string) fail("a regular expression must be a string literal");
      re2::RE2::Options opts;
      opts.set_log_errors(false);
      auto re = std::make_shared<re2::RE2>(tok_.text, opts);
      if (!re->ok()) fail("bad regular expression: " + re->error());
      advance();
      Node n;
      n.op = op;
      n.kids = {left};
      n.re = std::move(re);
      return add(std::move(n));
    }
    return left;
  }
  size_t parse_add() {
    size_t left = parse_mul();
    while (is_punct("+") || is_punct("-")) {
      Op op = is_punct("+") ? Op::add : Op::sub;
      advance();
      left = binary(op, left, parse_mul());
    }
    return left;
  }
  size_t parse_mul() {
    size_t left = parse_unary();
    while (is_punct("*") || is_punct("/") || is_punct("%")) {
      Op op = is_punct("*") ? Op::mul : is_punct("/") ? Op::div : Op::mod;
      advance();
      left = binary(op, left, parse_unary());
    }
    return left;
  }
  size_t parse_unary() {
    if (is_punct("-")) {
      advance();
      Node n;
      n.op = Op::neg;
      n.kids = {parse_unary()};
      return add(std::move(n));
    }
    return parse_primary();
  }

  void parse_segments(Path& p) {
    for (;;) {
      if (is_punct(".")) {
        advance();
        if (tok_.kind != Token::ident) fail("expected a field name after '.'");
        p.segments.push_back({tok_.text, -1});
        advance();
      } else if (is_punct("[")) {
        advance();
        if (tok_.kind == Token::string) {
          p.segments.push_back({tok_.text, -1});
        } else if (tok_.kind == Token::number && tok_.is_int && tok_.i >= 0) {
          p.segments.push_back({"", static_cast<long>(tok_.i)});
        } else {
          fail("expected a \"key\" or an index (0, 1, ...) inside [ ]");
        }
        advance();
        expect("]");
      } else {
        return;
      }
    }
  }

  /// `a, b, c` up to and including the closing `close` (list items, call arguments).
  std::vector<size_t> parse_items(const char* close) {
    std::vector<size_t> items;
    while (!is_punct(close)) {
      items.push_back(parse_or());
      if (!is_punct(",")) break;
      advance();
    }
    expect(close);
    return items;
  }

  size_t literal(Value v, std::string text = {}) {
    Node n;
    n.op = Op::literal;
    n.text = std::move(text);
    n.literal = v;
    return add(std::move(n));
  }

  size_t parse_primary() {
    if (tok_.kind == Token::number) {
      size_t n = tok_.is_int ? literal(Value::integer_value(tok_.i)) : literal(Value::number_value(tok_.d));
      advance();
      return n;
    }
    if (tok_.kind == Token::string) {
      size_t n = literal(Value::string_value({}), tok_.text);
      advance();
      return n;
    }
    if (is_punct("(")) {
      advance();
      size_t inner = parse_or();
      expect(")");
      return inner;
    }
    if (is_punct("[")) {
      advance();
      Node n;
      n.op = Op::list;
      n.kids = parse_items("]");
      return add(std::move(n));
    }
    if (is_punct("$")) {
      advance();
      Path p;
      parse_segments(p);
      return path_node(p);
    }
    if (tok_.kind == Token::ident) {
      std::string name = tok_.text;
      size_t at = tok_.offset;
      if (name == "true" || name == "false") {
        advance();
        return literal(Value::boolean_value(name == "true"));
      }
      if (name == "null") {
        advance();
        return literal(Value::null_value());
      }
      if (name == "and" || name == "or" || name == "not" || name == "in")
        fail("'" + name + "' is a keyword; write $[\"" + name + "\"] for a field of that name");
      advance();
      if (is_punct("(")) return call(name, at);
      Path p;
      p.segments.push_back({name, -1});
      parse_segments(p);
      return path_node(p);
    }
    if (tok_.kind == Token::end) fail("expected a value at the end of the expression");
    fail("unexpected '" + tok_.text + "'");
  }

  size_t path_node(const Path& p) {
    Node n;
    n.op = Op::path;
    n.slot = prog_.slot_for(p);
    return add(std::move(n));
  }

  size_t call(const std::string& name, size_t at) {
    auto it = functions().find(name);
    if (it == functions().end()) {
      std::string known;
      for (const auto& [k, v] : functions()) known += (known.empty() ? "" : ", ") + k;
      throw ParseError("unknown function '" + name + "' (known: " + known + ")", at);
    }
    advance();  // (
    Node n;
    n.op = Op::call;
    n.fn = it->second;
    n.kids = parse_items(")");
    Arity a = arity(n.fn);
    int got = static_cast<int>(n.kids.size());
    if (got < a.min || got > a.max) {
      std::string want = a.min == a.max ? std::to_string(a.min) : std::to_string(a.min) + " or more";
      throw ParseError(name + "() takes " + want + " argument" + (a.max == 1 ? "" : "s") + ", not " +
                           std::to_string(got),
                       at);
    }
    if (n.fn == Fn::exists && prog_.nodes[n.kids[0]].op != Op::path)
      throw ParseError("exists() takes a field path", at);
    return add(std::move(n));
  }

  Lexer lex_;
  ProgramImpl& prog_;
  Token tok_;
};

void insert_path(PathTrie& trie, const Path& p, int slot) {
  if (p.segments.empty()) {
    trie.whole = true;
    trie.whole_slot = slot;
    return;
  }
  std::vector<PathTrie::Entry>* level = &trie.roots;
  uint64_t* lengths = &trie.root_key_lengths;  // the level's owner (pushing onto the level leaves it in place)
  for (size_t i = 0; i < p.segments.size(); ++i) {
    const auto& seg = p.segments[i];
    PathTrie::Entry* found = nullptr;
    for (auto& e : *level)
      if (e.index == seg.index && e.key == seg.key) found = &e;
    if (!found) {
      level->push_back({seg.key, seg.index, -1, {}, 0});
      found = &level->back();
      if (seg.index < 0) *lengths |= key_length_bit(seg.key.size());
    }
    if (i + 1 == p.segments.size()) found->slot = slot;
    level = &found->kids;
    lengths = &found->kid_key_lengths;
  }
}

}  // namespace

size_t ProgramImpl::slot_for(const Path& p) {
  for (size_t i = 0; i < paths.size(); ++i) {
    const auto& q = paths[i];
    if (q.segments.size() != p.segments.size()) continue;
    bool same = true;
    for (size_t j = 0; j < q.segments.size() && same; ++j)
      same = q.segments[j].key == p.segments[j].key && q.segments[j].index == p.segments[j].index;
    if (same) return i;
  }
  paths.push_back(p);
  insert_path(trie, p, static_cast<int>(paths.size() - 1));
  return paths.size() - 1;
}

std::string Path::text() const {
  std::string out;
  if (segments.empty()) return "$";
  for (const auto& s : segments) {
    if (s.index >= 0) {
      out += "[" + std::to_string(s.index) + "]";
    } else {
      auto start = [](unsigned char x) { return std::isalpha(x) || x == '_' || x >= 0x80; };
      auto rest = [](unsigned char x) { return std::isalnum(x) || x == '_' || x >= 0x80; };
      bool plain = !s.key.empty() && start(static_cast<unsigned char>(s.key[0]));
      for (char c : s.key) plain = plain && rest(static_cast<unsigned char>(c));
      if (plain) out += (out.empty() ? "" : ".") + s.key;
      else out += "[\"" + s.key + "\"]";
    }
  }
  return out;
}

std::string field_expression(std::string_view name) {
  std::string e = "$[\"";
  for (char c : name) {
    if (c == '"' || c == '\\') e += '\\';
    e += c;
  }
  return e + "\"]";
}

Path parse_path(std::string_view text) {
  ProgramImpl scratch;
  Parser parser(text, scratch);
  return parser.parse_path_only();
}

Program::Program() : impl_(std::make_unique<ProgramImpl>()) {}
Program::~Program() = default;
Program::Program(Program&&) noexcept = default;
Program& Program::operator=(Program&&) noexcept = default;

size_t Program::add(std::string_view source) {
  size_t nodes_before = impl_->nodes.size();
  try {
    Parser parser(source, *impl_);
    size_t root = parser.parse_all();
    impl_->roots.push_back(root);
  } catch (...) {
    impl_->nodes.resize(nodes_before);  // paths already added stay: harmless
    throw;
  }
  // string literals point into their node's own storage; fix after the vector settled
  for (auto& n : impl_->nodes)
    if (n.op == Op::literal && n.literal.type == Value::Type::string) n.literal.s = n.text;
  return impl_->roots.size() - 1;
}

bool Program::is_path(size_t index) const { return impl_->nodes[impl_->roots[index]].op == Op::path; }
size_t Program::size() const { return impl_->roots.size(); }

const std::vector<std::string>& function_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [k, fn] : functions()) v.push_back(k);
    return v;
  }();
  return names;
}

}  // namespace aetl::expr
