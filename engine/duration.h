#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

/// Parsers for the human-written quantities used in flags and YAML.
/// Each returns nullopt for text it does not understand; callers name the flag in the error.
namespace aetl {

using Millis = std::chrono::milliseconds;

/// "250ms", "1.5s", "2m", "1h", "500us" (rounded up to 1ms), a bare number means seconds.
std::optional<Millis> parse_duration(std::string_view text);

/// "100ms..30s": a lower and upper bound, lower <= upper.
std::optional<std::pair<Millis, Millis>> parse_duration_range(std::string_view text);

/// "10MiB", "5MB", "512k", "1G", a bare number means bytes. K/M/G are powers of 1024.
std::optional<int64_t> parse_size(std::string_view text);

/// "50/s", "600/m", "3600/h", a bare number means per second. Returns events per second (> 0).
std::optional<double> parse_rate(std::string_view text);

}  // namespace aetl
