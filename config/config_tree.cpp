#include "config/config_tree.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

namespace aetl {

const ConfigValue* ConfigValue::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k.scalar == key) return &v;
  return nullptr;
}

std::string ConfigValue::describe() const {
  switch (type) {
    case Type::null: return "nothing (null)";
    case Type::scalar: return "a scalar";
    case Type::sequence: return "a list";
    case Type::mapping: return "a mapping";
  }
  return "?";
}

namespace {

size_t count_nodes(const ConfigValue& v) {
  size_t n = 1;
  for (const auto& item : v.items) n += count_nodes(item);
  for (const auto& [k, val] : v.entries) n += 1 + count_nodes(val);
  return n;
}

/// Builds the tree from parser events. Aliases are expanded by copying the
/// anchored node, counting every copied node against the limit, so a chain of
/// aliases doubling at each level is refused long before memory runs out.
class TreeBuilder final : public YAML::EventHandler {
 public:
  TreeBuilder(const std::string& file, std::string_view source, const ConfigLimits& limits)
      : file_(file), source_(source), limits_(limits) {}

  ConfigValue take_root() { return std::move(root_); }
  int documents() const { return documents_; }

  void OnDocumentStart(const YAML::Mark&) override { ++documents_; }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    ConfigValue v;
    v.where = where(mark);
    add(std::move(v), anchor, 1);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) fail(mark, "unknown alias");
    ConfigValue copy = it->second.first;
    add(std::move(copy), 0, it->second.second, &mark);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    refuse_tag(mark, tag);
    ConfigValue v;
    v.type = ConfigValue::Type::scalar;
    v.scalar = value;
    v.quoted = tag == "!";  // yaml-cpp tags quoted and block scalars "!", plain ones "?"
    v.where = where(mark);
    // Can an offset into the value be turned into a column? (expression errors)
    if (mark.pos >= 0 && static_cast<size_t>(mark.pos) < source_.size() && value.find('\n') == std::string::npos) {
      size_t pos = static_cast<size_t>(mark.pos);
      char first = source_[pos];
      int shift = (first == '"' || first == '\'') ? 1 : 0;
      if (source_.compare(pos + shift, value.size(), value) == 0) {
        v.verbatim = true;
        v.column_shift = shift;
      }
    }
    // A plain `~` or `null` or an empty plain scalar is YAML's null.
    if (!v.quoted && (value == "~" || value == "null" || value == "Null" || value == "NULL" || value.empty()))
      v.type = ConfigValue::Type::null;
    add(std::move(v), anchor, 1);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    refuse_tag(mark, tag);
    open(mark, ConfigValue::Type::sequence, anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    refuse_tag(mark, tag);
    open(mark, ConfigValue::Type::mapping, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    ConfigValue node;
    YAML::anchor_t anchor = 0;
    size_t nodes = 1;  // nodes inside, for the alias budget
    bool have_key = false;
    ConfigValue key;
  };

  ConfigLocation where(const YAML::Mark& mark) const { return {file_, mark.line + 1, mark.column + 1}; }

  /// yaml-cpp gives untagged nodes "?" (plain) or "!" (quoted, block, or a bare `!`):
  /// any other tag was written out (`!custom`, `!!python/object`) and means nothing here.
  void refuse_tag(const YAML::Mark& mark, const std::string& tag) const {
    if (tag == "?" || tag == "!") return;
    std::string written = tag;
    if (mark.pos >= 0 && static_cast<size_t>(mark.pos) < source_.size() && source_[static_cast<size_t>(mark.pos)] == '!') {
      std::string_view rest = source_.substr(static_cast<size_t>(mark.pos));
      written = std::string(rest.substr(0, rest.find_first_of(" \t\r\n,]}")));
    }
    fail(mark, "YAML tag '" + written + "' is not supported (a pipeline file is plain YAML)");
  }

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const {
    throw ConfigError({ConfigProblem{where(mark), message}});
  }
  [[noreturn]] void fail(const ConfigLocation& at, const std::string& message) const {
    throw ConfigError({ConfigProblem{at, message}});
  }

  void open(const YAML::Mark& mark, ConfigValue::Type type, YAML::anchor_t anchor) {
    if (stack_.size() >= limits_.max_depth)
      fail(mark, "nested more than " + std::to_string(limits_.max_depth) + " levels deep");
    Frame f;
    f.node.type = type;
    f.node.where = where(mark);
    f.anchor = anchor;
    stack_.push_back(std::move(f));
    charge(1, nullptr, stack_.back().node.where);
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    // charged already node by node; add() must not charge again
    add(std::move(f.node), f.anchor, f.nodes, nullptr, /*charged=*/true);
  }

  void charge(size_t n, const YAML::Mark* mark, const ConfigLocation& at) {
    total_ += n;
    if (total_ > limits_.max_nodes) {
      std::string msg = "more than " + std::to_string(limits_.max_nodes) + " nodes" +
                        (mark ? " once aliases are expanded" : "") + ": refusing to load";
      if (mark) fail(*mark, msg);
      fail(at, msg);
    }
  }

  void add(ConfigValue v, YAML::anchor_t anchor, size_t nodes, const YAML::Mark* alias_mark = nullptr,
           bool charged = false) {
    if (!charged) charge(nodes, alias_mark, v.where);
    if (anchor) anchors_[anchor] = {v, nodes};
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    top.nodes += nodes;
    if (top.node.type == ConfigValue::Type::sequence) {
      top.node.items.push_back(std::move(v));
      return;
    }
    if (!top.have_key) {
      if (v.type == ConfigValue::Type::null && !v.quoted) v.type = ConfigValue::Type::scalar;  // `~:` or `null:` as a key
      if (v.type != ConfigValue::Type::scalar) fail(v.where, "a mapping key must be a plain string");
      for (const auto& [k, val] : top.node.entries)
        if (k.scalar == v.scalar)
          fail(v.where, "duplicate key '" + v.scalar + "' (first at line " + std::to_string(k.where.line) + ")");
      top.key = std::move(v);
      top.have_key = true;
      return;
    }
    top.node.entries.emplace_back(std::move(top.key), std::move(v));
    top.have_key = false;
  }

  const std::string& file_;
  std::string_view source_;
  const ConfigLimits& limits_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, std::pair<ConfigValue, size_t>> anchors_;
  ConfigValue root_;
  size_t total_ = 0;
  int documents_ = 0;
};

}  // namespace

ConfigValue parse_config_text(std::string_view text, const std::string& file_name, const ConfigLimits& limits) {
  if (text.size() > limits.max_file_bytes)
    throw ConfigError({ConfigProblem{{file_name, 1, 1},
                                     "larger than " + std::to_string(limits.max_file_bytes) +
                                         " bytes: not a pipeline file?"}});
  std::istringstream in{std::string(text)};
  TreeBuilder builder(file_name, text, limits);
  try {
    YAML::Parser parser(in);
    if (!parser.HandleNextDocument(builder))
      throw ConfigError({ConfigProblem{{file_name, 1, 1}, "the file is empty"}});
    ConfigValue root = builder.take_root();
    TreeBuilder second(file_name, text, limits);
    if (parser.HandleNextDocument(second))
      throw ConfigError({ConfigProblem{{file_name, 1, 1}, "more than one YAML document ('---'): one pipeline per file"}});
    return root;
  } catch (const YAML::Exception& e) {
    ConfigLocation at{file_name, e.mark.is_null() ? 1 : e.mark.line + 1, e.mark.is_null() ? 1 : e.mark.column + 1};
    throw ConfigError({ConfigProblem{at, "YAML syntax error: " + e.msg}});
  }
}

ConfigValue load_config_file(const std::string& path, const ConfigLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    throw ConfigError({ConfigProblem{{path, 0, 0}, "cannot open " + path + ": " + std::strerror(err)}});
  }
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > limits.max_file_bytes) break;
  }
  if (in.bad()) throw ConfigError({ConfigProblem{{path, 0, 0}, "cannot read " + path + ": I/O error"}});
  return parse_config_text(text, path, limits);
}

}  // namespace aetl
