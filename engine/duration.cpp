#include "engine/duration.h"

#include <charconv>
#include <cmath>
#include <string>

namespace aetl {
namespace {

/// Splits "1.5s" into 1.5 and "s". Rejects empty, negative or non-numeric text.
std::optional<std::pair<double, std::string_view>> split_number(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  std::string_view number = text.substr(0, i);
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;  // "1.2.3", overflow
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return std::make_pair(value, unit);
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [value, unit] = *parts;
  double ms;
  if (unit.empty() || unit == "s") ms = value * 1000;
  else if (unit == "ms") ms = value;
  else if (unit == "us") ms = value / 1000;
  else if (unit == "m" || unit == "min") ms = value * 60'000;
  else if (unit == "h") ms = value * 3'600'000;
  else if (unit == "d") ms = value * 86'400'000;
  else return std::nullopt;
  if (ms > 1e12) return std::nullopt;
  return Millis(static_cast<int64_t>(std::ceil(ms)));
}

std::optional<std::pair<Millis, Millis>> parse_duration_range(std::string_view text) {
  auto sep = text.find("..");
  if (sep == std::string_view::npos) return std::nullopt;
  auto lo = parse_duration(text.substr(0, sep));
  auto hi = parse_duration(text.substr(sep + 2));
  if (!lo || !hi || *lo > *hi) return std::nullopt;
  return std::make_pair(*lo, *hi);
}

std::optional<int64_t> parse_size(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [value, unit] = *parts;
  double factor;
  if (unit.empty() || unit == "B") factor = 1;
  else if (unit == "k" || unit == "K" || unit == "KiB" || unit == "KB" || unit == "kB") factor = 1024.0;
  else if (unit == "M" || unit == "MiB" || unit == "MB") factor = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB" || unit == "GB") factor = 1024.0 * 1024 * 1024;
  else return std::nullopt;
  double bytes = value * factor;
  if (bytes > 9e18) return std::nullopt;
  return static_cast<int64_t>(bytes);
}

std::optional<double> parse_rate(std::string_view text) {
  auto slash = text.find('/');
  std::string_view number = text.substr(0, slash);
  std::string_view per = slash == std::string_view::npos ? "s" : text.substr(slash + 1);
  auto parts = split_number(number);
  if (!parts || !parts->second.empty() || parts->first <= 0) return std::nullopt;
  double seconds;
  if (per == "s") seconds = 1;
  else if (per == "m" || per == "min") seconds = 60;
  else if (per == "h") seconds = 3600;
  else return std::nullopt;
  return parts->first / seconds;
}

}  // namespace aetl
