#include "run/schedule/cron_expr.h"

#include <array>
#include <charconv>
#include <stdexcept>
#include <vector>

namespace aetl {
namespace {

struct FieldRule {
  const char* name;
  int min;
  int max;
  std::vector<std::string_view> names;  ///< names[i] stands for min + i
};

const FieldRule kRules[5] = {
    {"minute", 0, 59, {}},
    {"hour", 0, 23, {}},
    {"day of month", 1, 31, {}},
    {"month", 1, 12, {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
    {"day of week", 0, 7, {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int value_of(std::string_view token, const FieldRule& rule) {
  std::string low = lower(token);
  for (size_t i = 0; i < rule.names.size(); ++i)
    if (low == rule.names[i]) return rule.min + static_cast<int>(i);
  int v = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (token.empty() || ec != std::errc() || end != token.data() + token.size())
    throw std::invalid_argument(std::string(rule.name) + ": '" + std::string(token) + "' is not a number" +
                                (rule.names.empty() ? "" : " or a name"));
  if (v < rule.min || v > rule.max)
    throw std::invalid_argument(std::string(rule.name) + ": " + std::to_string(v) + " is out of range " +
                                std::to_string(rule.min) + "-" + std::to_string(rule.max));
  return v;
}

/// Sets the values of one field in `bits` (index = value).
template <size_t N>
void parse_field(std::string_view field, const FieldRule& rule, std::bitset<N>& bits) {
  size_t start = 0;
  while (start <= field.size()) {
    size_t comma = field.find(',', start);
    std::string_view item = field.substr(start, comma == std::string_view::npos ? field.npos : comma - start);
    if (item.empty()) throw std::invalid_argument(std::string(rule.name) + ": empty item in '" + std::string(field) + "'");
    int step = 1;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      std::string_view s = item.substr(slash + 1);
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (s.empty() || ec != std::errc() || end != s.data() + s.size() || step < 1)
        throw std::invalid_argument(std::string(rule.name) + ": step '" + std::string(s) + "' is not a positive number");
      item = item.substr(0, slash);
    }
    int lo = rule.min, hi = rule.max;
    if (item == "*") {
      if (rule.max == 7) hi = 6;  // day of week: 7 is Sunday again
    } else if (size_t dash = item.find('-'); dash != std::string_view::npos) {
      lo = value_of(item.substr(0, dash), rule);
      hi = value_of(item.substr(dash + 1), rule);
      if (lo > hi)
        throw std::invalid_argument(std::string(rule.name) + ": range '" + std::string(item) + "' runs backwards");
    } else {
      lo = value_of(item, rule);
      hi = step > 1 ? rule.max : lo;  // `5/15`: from 5 on, every 15
    }
    for (int v = lo; v <= hi; v += step) {
      bits.set(static_cast<size_t>(rule.max == 7 && v == 7 ? 0 : v));
      if (hi - v < step) break;  // a huge step: no overflow past hi
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

}  // namespace

CronExpr CronExpr::parse(std::string_view text) {
  std::string spec(text);
  while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.back()))) spec.pop_back();
  while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.front()))) spec.erase(0, 1);
  static const std::array<std::pair<std::string_view, std::string_view>, 7> macros{{
      {"@hourly", "0 * * * *"},
      {"@daily", "0 0 * * *"},
      {"@midnight", "0 0 * * *"},
      {"@weekly", "0 0 * * 0"},
      {"@monthly", "0 0 1 * *"},
      {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"},
  }};
  std::string expanded = spec;
  if (!spec.empty() && spec[0] == '@') {
    bool known = false;
    for (const auto& [name, fields] : macros)
      if (lower(spec) == name) {
        expanded = fields;
        known = true;
      }
    if (!known)
      throw std::invalid_argument("unknown '" + spec + "' (known: @hourly, @daily, @midnight, @weekly, @monthly, "
                                  "@yearly, @annually)");
  }
  std::vector<std::string_view> fields;
  std::string_view rest = expanded;
  while (!rest.empty()) {
    size_t b = rest.find_first_not_of(" \t");
    if (b == std::string_view::npos) break;
    rest = rest.substr(b);
    size_t e = rest.find_first_of(" \t");
    fields.push_back(rest.substr(0, e));
    rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e);
  }
  if (fields.size() != 5)
    throw std::invalid_argument("needs 5 fields (minute hour day-of-month month day-of-week), got " +
                                std::to_string(fields.size()));
  CronExpr c;
  c.text_ = spec;
  parse_field(fields[0], kRules[0], c.minutes_);
  parse_field(fields[1], kRules[1], c.hours_);
  parse_field(fields[2], kRules[2], c.days_);
  parse_field(fields[3], kRules[3], c.months_);
  parse_field(fields[4], kRules[4], c.weekdays_);
  c.dom_star_ = fields[2].front() == '*';
  c.dow_star_ = fields[4].front() == '*';
  return c;
}

bool CronExpr::day(int dom, int dow) const {
  bool d = days_[static_cast<size_t>(dom)], w = weekdays_[static_cast<size_t>(dow)];
  if (dom_star_ || dow_star_) return d && w;
  return d || w;
}

}  // namespace aetl
