#include "config/config_reader.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "config/did_you_mean.h"
#include "engine/duration.h"

namespace aetl {

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
  if (!value.is_scalar()) {
    problems.add(value.where, std::string(what) + " must be a string, not " + value.describe());
    return std::nullopt;
  }
  size_t error_offset = 0;
  try {
    Expanded e = expand_env(value.scalar, problems.env(), &error_offset);
    ConfigString s;
    s.text = std::move(e.text);
    s.where = value.where;
    s.secret = e.used_variables;
    s.verbatim = value.verbatim && !e.used_variables && s.text == value.scalar;
    s.column_shift = value.column_shift;
    return s;
  } catch (const std::invalid_argument& e) {
    ConfigLocation at = value.where;
    if (value.verbatim) at.column += value.column_shift + static_cast<int>(error_offset);
    problems.add(at, std::string(what) + ": " + e.what());
    return std::nullopt;
  }
}

ConfigReader::ConfigReader(const ConfigValue& node, ConfigProblems& problems, std::string what)
    : node_(&node), problems_(problems), what_(std::move(what)) {
  if (!node.is_mapping()) {
    problems_.add(node.where, what_ + " must be a mapping (key: value), not " + node.describe());
    node_ = nullptr;
  }
}

const ConfigLocation& ConfigReader::where() const {
  static const ConfigLocation none;
  return node_ ? node_->where : none;
}

const ConfigValue* ConfigReader::raw(std::string_view key, bool required) {
  known_.emplace_back(key);
  if (!node_) return nullptr;
  const ConfigValue* v = node_->find(key);
  if (v && v->is_null()) v = nullptr;
  if (!v && required) problems_.add(node_->where, what_ + ": missing required key '" + std::string(key) + "'");
  return v;
}

std::optional<ConfigString> ConfigReader::string(std::string_view key, bool required) {
  const ConfigValue* v = raw(key, required);
  if (!v) return std::nullopt;
  return expand_scalar(*v, problems_, std::string(key));
}

std::optional<int64_t> ConfigReader::integer(std::string_view key, int64_t min, int64_t max, bool required) {
  auto s = string(key, required);
  if (!s) return std::nullopt;
  int64_t n = 0;
  const char* end = s->text.data() + s->text.size();
  auto [p, ec] = std::from_chars(s->text.data(), end, n);
  if (ec != std::errc() || p != end) {
    problems_.add(s->where, std::string(key) + " must be a whole number" +
                                (s->secret ? "" : ", not '" + s->text + "'"));
    return std::nullopt;
  }
  if (n < min || n > max) {
    problems_.add(s->where, std::string(key) + " must be between " + std::to_string(min) + " and " +
                                std::to_string(max));
    return std::nullopt;
  }
  return n;
}

std::optional<bool> ConfigReader::boolean(std::string_view key) {
  auto s = string(key);
  if (!s) return std::nullopt;
  if (s->text == "true" || s->text == "yes" || s->text == "on") return true;
  if (s->text == "false" || s->text == "no" || s->text == "off") return false;
  problems_.add(s->where, std::string(key) + " must be true or false");
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> ConfigReader::duration(std::string_view key) {
  auto s = string(key);
  if (!s) return std::nullopt;
  auto d = parse_duration(s->text);
  if (!d) problems_.add(s->where, std::string(key) + ": bad duration" + (s->secret ? "" : " '" + s->text + "'") +
                                      " (examples: 250ms, 1.5s, 2m)");
  return d;
}

std::optional<int64_t> ConfigReader::size(std::string_view key) {
  auto s = string(key);
  if (!s) return std::nullopt;
  auto n = parse_size(s->text);
  if (!n) problems_.add(s->where, std::string(key) + ": bad size" + (s->secret ? "" : " '" + s->text + "'") +
                                      " (examples: 512KiB, 16MiB, 1G)");
  return n;
}

std::optional<double> ConfigReader::rate(std::string_view key) {
  auto s = string(key);
  if (!s) return std::nullopt;
  auto r = parse_rate(s->text);
  if (!r) problems_.add(s->where, std::string(key) + ": bad rate" + (s->secret ? "" : " '" + s->text + "'") +
                                      " (examples: 50/s, 600/m)");
  return r;
}

std::optional<std::string> ConfigReader::choice(std::string_view key, const std::vector<std::string>& allowed) {
  auto s = string(key);
  if (!s) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), s->text) != allowed.end()) return s->text;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  std::string msg = std::string(key) + " must be one of " + list;
  if (!s->secret) {
    msg += ", not '" + s->text + "'";
    if (auto guess = did_you_mean(s->text, allowed)) msg += " (did you mean '" + *guess + "'?)";
  }
  problems_.add(s->where, msg);
  return std::nullopt;
}

std::optional<std::vector<ConfigString>> ConfigReader::string_list(std::string_view key, bool required) {
  const ConfigValue* v = raw(key, required);
  if (!v) return std::nullopt;
  std::vector<ConfigString> out;
  if (v->is_scalar()) {
    auto s = expand_scalar(*v, problems_, key);
    if (!s) return std::nullopt;
    out.push_back(std::move(*s));
    return out;
  }
  if (!v->is_sequence()) {
    problems_.add(v->where, std::string(key) + " must be a string or a list of strings, not " + v->describe());
    return std::nullopt;
  }
  bool good = true;
  for (const auto& item : v->items) {
    auto s = expand_scalar(item, problems_, std::string(key) + " item");
    if (s) out.push_back(std::move(*s));
    else good = false;
  }
  if (!good) return std::nullopt;
  return out;
}

std::optional<std::vector<std::pair<std::string, ConfigString>>> ConfigReader::string_map(std::string_view key) {
  const ConfigValue* v = raw(key);
  if (!v) return std::nullopt;
  if (!v->is_mapping()) {
    problems_.add(v->where, std::string(key) + " must be a mapping (name: value), not " + v->describe());
    return std::nullopt;
  }
  std::vector<std::pair<std::string, ConfigString>> out;
  bool good = true;
  for (const auto& [k, val] : v->entries) {
    auto s = expand_scalar(val, problems_, std::string(key) + "." + k.scalar);
    if (s) out.emplace_back(k.scalar, std::move(*s));
    else good = false;
  }
  if (!good) return std::nullopt;
  return out;
}

std::optional<RetryPolicy> ConfigReader::retry(std::string_view key, const RetryPolicy& defaults) {
  const ConfigValue* v = raw(key);
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
    ConfigReader r(wrapper, problems_, std::string(key));
    auto max = r.integer("max", 0, 1000);
    if (!max) return std::nullopt;
    policy.max_retries = static_cast<int>(*max);
    return policy;
  }
  ConfigReader r(*v, problems_, std::string(key));
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
      problems_.add(b->where, "backoff must be a duration range like 100ms..30s");
    }
  }
  r.finish();
  if (problems_.size() != before) return std::nullopt;
  return policy;
}

void ConfigReader::finish() {
  if (!node_) return;
  for (const auto& [k, v] : node_->entries) {
    if (std::find(known_.begin(), known_.end(), k.scalar) != known_.end()) continue;
    std::string msg = what_ + ": unknown key '" + k.scalar + "'";
    if (auto guess = did_you_mean(k.scalar, known_)) msg += " (did you mean '" + *guess + "'?)";
    problems_.add(k.where, msg);
  }
}

}  // namespace aetl
