#include "config/config_reader.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <stdexcept>

#include "config/did_you_mean.h"
#include "engine/duration.h"

namespace aetl {

void ConfigProblems::add(const ConfigLocation& where, std::string message) {
  if (!context_.empty()) message = context_ + ": " + message;
  list_.push_back({where, std::move(message)});
}

ProblemContext::ProblemContext(ConfigProblems& problems, std::string name)
    : problems_(problems), saved_(std::move(problems.context_)) {
  problems_.context_ = std::move(name);
}

ProblemContext::~ProblemContext() { problems_.context_ = std::move(saved_); }

void ConfigProblems::throw_if_any() const {
  if (list_.empty()) return;
  auto sorted = list_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const ConfigProblem& a, const ConfigProblem& b) {
    if (a.where.file != b.where.file) return false;
    if (a.where.line != b.where.line) return a.where.line < b.where.line;
    return a.where.column < b.where.column;
  });
  throw ConfigError(std::move(sorted));
}

ConfigLocation ConfigString::at(size_t offset) const {
  if (!verbatim) return where;
  ConfigLocation loc = where;
  loc.column += column_shift + static_cast<int>(offset);
  return loc;
}

std::optional<ConfigString> expand_scalar(const ConfigValue& value, ConfigProblems& problems, std::string_view what) {
  const std::string prefix = what.empty() ? "" : std::string(what) + ": ";
  if (!value.is_scalar()) {
    problems.add(value.where, prefix + "must be a string, not " + value.describe());
    return std::nullopt;
  }
  size_t error_offset = 0;
  try {
    Expanded e = expand_env(value.scalar, problems.env(), &error_offset);
    ConfigString s;
    s.text = std::move(e.text);
    s.where = value.where;
    s.secret = e.used_variables;
    s.values = std::move(e.values);
    s.verbatim = value.verbatim && !e.used_variables && s.text == value.scalar;
    s.column_shift = value.column_shift;
    return s;
  } catch (const std::invalid_argument& e) {
    ConfigLocation at = value.where;
    if (value.verbatim) at.column += value.column_shift + static_cast<int>(error_offset);
    problems.add(at, prefix + e.what());
    return std::nullopt;
  }
}

ConfigReader::ConfigReader(const ConfigValue& node, ConfigProblems& problems, std::vector<FieldList> declared,
                           std::string path)
    : node_(&node), problems_(problems), declared_(std::move(declared)), path_(std::move(path)) {
  if (!node.is_mapping()) {
    problems_.add(node.where, (path_.empty() ? "" : path_ + ": ") + "must be a mapping (key: value), not " +
                                  node.describe());
    node_ = nullptr;
  }
}

const ConfigLocation& ConfigReader::where() const {
  static const ConfigLocation none;
  return node_ ? node_->where : none;
}

std::string ConfigReader::full(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const FieldSpec* ConfigReader::declaration(std::string_view key, std::initializer_list<FieldType> types,
                                           bool required) {
  const std::string name = full(key);
  const std::string section = name + ".";
  bool is_section = false;
  for (FieldList list : declared_) {
    for (const FieldSpec& f : list) {
      if (f.name == name) {
        if (types.size() != 0 && std::find(types.begin(), types.end(), f.type) == types.end())
          throw std::logic_error("config reader: '" + name + "' is declared as " +
                                 std::string(field_type_name(f.type)) + " but read as something else");
        if (required && f.default_text != "required")
          throw std::logic_error("config reader: '" + name + "' is read as required but not declared so");
        return &f;
      }
      if (f.name.substr(0, section.size()) == section) is_section = true;
    }
  }
  if (is_section && types.size() == 0) return nullptr;
  throw std::logic_error("config reader: '" + name + "' is read but not declared");
}

const ConfigValue* ConfigReader::lookup(std::string_view key, bool required) {
  read_.emplace_back(key);
  if (!node_) return nullptr;
  const ConfigValue* v = node_->find(key);
  if (v && v->is_null()) v = nullptr;
  if (!v && required) problems_.add(node_->where, "missing required key '" + full(key) + "'");
  return v;
}

const ConfigValue* ConfigReader::raw(std::string_view key, bool required) {
  declaration(key, {}, required);
  return lookup(key, required);
}

std::optional<ConfigReader> ConfigReader::section(std::string_view key) {
  declaration(key, {}, false);
  const ConfigValue* v = lookup(key, false);
  if (!v) return std::nullopt;
  ConfigReader r(*v, problems_, declared_, full(key));
  if (!r.ok()) return std::nullopt;
  return r;
}

std::optional<ConfigString> ConfigReader::text(std::string_view key, bool required) {
  const ConfigValue* v = lookup(key, required);
  if (!v) return std::nullopt;
  return expand_scalar(*v, problems_, full(key));
}

std::optional<ConfigString> ConfigReader::string(std::string_view key, bool required) {
  declaration(key,
              {FieldType::string, FieldType::template_text, FieldType::expression, FieldType::jq_program,
               FieldType::duration_range},
              required);
  return text(key, required);
}

std::optional<int64_t> ConfigReader::integer(std::string_view key, int64_t min, int64_t max, bool required) {
  declaration(key, {FieldType::integer}, required);
  auto s = text(key, required);
  if (!s) return std::nullopt;
  int64_t n = 0;
  const char* end = s->text.data() + s->text.size();
  auto [p, ec] = std::from_chars(s->text.data(), end, n);
  if (ec != std::errc() || p != end) {
    problems_.add(s->where, full(key) + ": must be a whole number" + (s->secret ? "" : ", not '" + s->text + "'"));
    return std::nullopt;
  }
  if (n < min || n > max) {
    problems_.add(s->where, full(key) + ": must be between " + std::to_string(min) + " and " + std::to_string(max));
    return std::nullopt;
  }
  return n;
}

std::optional<bool> ConfigReader::boolean(std::string_view key) {
  declaration(key, {FieldType::boolean}, false);
  auto s = text(key, false);
  if (!s) return std::nullopt;
  if (s->text == "true" || s->text == "yes" || s->text == "on") return true;
  if (s->text == "false" || s->text == "no" || s->text == "off") return false;
  problems_.add(s->where, full(key) + ": must be true or false");
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> ConfigReader::duration(std::string_view key) {
  declaration(key, {FieldType::duration}, false);
  auto s = text(key, false);
  if (!s) return std::nullopt;
  auto d = parse_duration(s->text);
  if (!d) problems_.add(s->where, full(key) + ": bad duration" + (s->secret ? "" : " '" + s->text + "'") +
                                      " (examples: 250ms, 1.5s, 2m)");
  return d;
}

std::optional<int64_t> ConfigReader::size(std::string_view key) {
  declaration(key, {FieldType::size}, false);
  auto s = text(key, false);
  if (!s) return std::nullopt;
  auto n = parse_size(s->text);
  if (!n) problems_.add(s->where, full(key) + ": bad size" + (s->secret ? "" : " '" + s->text + "'") +
                                      " (examples: 512KiB, 16MiB, 1G)");
  return n;
}

std::optional<double> ConfigReader::rate(std::string_view key) {
  declaration(key, {FieldType::rate}, false);
  auto s = text(key, false);
  if (!s) return std::nullopt;
  auto r = parse_rate(s->text);
  if (!r) problems_.add(s->where, full(key) + ": bad rate" + (s->secret ? "" : " '" + s->text + "'") +
                                      " (examples: 50/s, 600/m)");
  return r;
}

std::optional<std::string> ConfigReader::choice(std::string_view key, const std::vector<std::string>& allowed) {
  declaration(key, {FieldType::choice}, false);
  auto s = text(key, false);
  if (!s) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), s->text) != allowed.end()) return s->text;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  std::string msg = full(key) + ": must be one of " + list;
  if (!s->secret) {
    msg += ", not '" + s->text + "'";
    if (auto guess = did_you_mean(s->text, allowed)) msg += " (did you mean '" + *guess + "'?)";
  }
  problems_.add(s->where, msg);
  return std::nullopt;
}

std::optional<std::vector<ConfigString>> ConfigReader::string_list(std::string_view key, bool required) {
  declaration(key, {FieldType::list, FieldType::columns}, required);
  const ConfigValue* v = lookup(key, required);
  if (!v) return std::nullopt;
  std::vector<ConfigString> out;
  if (v->is_scalar()) {
    auto s = expand_scalar(*v, problems_, full(key));
    if (!s) return std::nullopt;
    out.push_back(std::move(*s));
    return out;
  }
  if (!v->is_sequence()) {
    problems_.add(v->where, full(key) + ": must be a string or a list of strings, not " + v->describe());
    return std::nullopt;
  }
  bool good = true;
  for (const auto& item : v->items) {
    auto s = expand_scalar(item, problems_, full(key) + " item");
    if (s) out.push_back(std::move(*s));
    else good = false;
  }
  if (!good) return std::nullopt;
  return out;
}

std::optional<std::vector<std::pair<std::string, ConfigString>>> ConfigReader::string_map(std::string_view key) {
  declaration(key, {FieldType::map}, false);
  const ConfigValue* v = lookup(key, false);
  if (!v) return std::nullopt;
  if (!v->is_mapping()) {
    problems_.add(v->where, full(key) + ": must be a mapping (name: value), not " + v->describe());
    return std::nullopt;
  }
  std::vector<std::pair<std::string, ConfigString>> out;
  bool good = true;
  for (const auto& [k, val] : v->entries) {
    auto s = expand_scalar(val, problems_, full(key) + "." + k.scalar);
    if (s) out.emplace_back(k.scalar, std::move(*s));
    else good = false;
  }
  if (!good) return std::nullopt;
  return out;
}

std::optional<RetryPolicy> ConfigReader::retry(std::string_view key, const RetryPolicy& defaults) {
  declaration(key, {}, false);
  const ConfigValue* v = lookup(key, false);
  if (!v) return std::nullopt;
  RetryPolicy policy = defaults;
  if (v->is_scalar()) {  // `retry: 5` is short for `retry: {max: 5}`
    ConfigValue wrapper;
    wrapper.type = ConfigValue::Type::mapping;
    wrapper.where = v->where;
    ConfigValue k;
    k.type = ConfigValue::Type::scalar;
    k.scalar = "max";
    wrapper.entries.emplace_back(k, *v);
    ConfigReader r(wrapper, problems_, declared_, full(key));
    auto max = r.integer("max", 0, 1000);
    if (!max) return std::nullopt;
    policy.max_retries = static_cast<int>(*max);
    return policy;
  }
  ConfigReader r(*v, problems_, declared_, full(key));
  if (!r.ok()) return std::nullopt;
  size_t before = problems_.size();
  if (auto max = r.integer("max", 0, 1000)) policy.max_retries = static_cast<int>(*max);
  if (auto b = r.string("backoff")) {
    auto range = parse_duration_range(b->text);
    if (range) {
      policy.min_backoff = range->first;
      policy.max_backoff = range->second;
    } else if (auto d = parse_duration(b->text)) {
      policy.min_backoff = *d;
      policy.max_backoff = std::max(*d, policy.max_backoff);
    } else {
      problems_.add(b->where, r.full("backoff") + ": must be a duration range like 100ms..30s");
    }
  }
  r.finish();
  if (problems_.size() != before) return std::nullopt;
  return policy;
}

void ConfigReader::finish() {
  if (!node_) return;
  const std::string prefix = path_.empty() ? "" : path_ + ".";
  std::vector<std::string> candidates;  // the declared keys at this level, and their dotted paths below it
  std::set<std::string> declared_here;
  for (FieldList list : declared_)
    for (const FieldSpec& f : list) {
      if (f.name.empty() || f.name == "*" || f.name.substr(0, prefix.size()) != prefix) continue;
      std::string rest(f.name.substr(prefix.size()));
      std::string first = rest.substr(0, rest.find('.'));
      if (declared_here.insert(first).second) candidates.push_back(first);
      if (first != rest) candidates.push_back(rest);
    }
  for (const auto& [k, v] : node_->entries) {
    if (declared_here.count(k.scalar)) {
      if (std::find(read_.begin(), read_.end(), k.scalar) == read_.end())
        throw std::logic_error("config reader: '" + full(k.scalar) + "' is declared but the parser never read it");
      continue;
    }
    std::string msg = "unknown key '" + full(k.scalar) + "'";
    if (auto guess = did_you_mean(k.scalar, candidates)) msg += " (did you mean '" + full(*guess) + "'?)";
    problems_.add(k.where, msg);
  }
}

}  // namespace aetl
