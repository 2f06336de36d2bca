#pragma once
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace aetl::redis {

/// A stream entry's ID ("1700000000000-3": milliseconds and a sequence number),
/// as two integers: kept, compared and hashed without a string per entry.
struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;

  /// "MS-SEQ" (what the server sends); nothing for anything else.
  static std::optional<StreamId> parse(std::string_view s) {
    StreamId id;
    const char* end = s.data() + s.size();
    auto [dash, e1] = std::from_chars(s.data(), end, id.ms);
    if (e1 != std::errc() || dash == end || *dash != '-') return std::nullopt;
    auto [stop, e2] = std::from_chars(dash + 1, end, id.seq);
    if (e2 != std::errc() || stop != end) return std::nullopt;
    return id;
  }
  /// Appends "MS-SEQ" to `out` (at most kMaxText bytes).
  void append_to(std::string& out) const {
    char buf[kMaxText + 1];
    char* dash = std::to_chars(buf, buf + 20, ms).ptr;  // 20 digits hold any uint64_t
    *dash = '-';
    char* end = std::to_chars(dash + 1, buf + sizeof buf, seq).ptr;
    out.append(buf, end);
  }
  std::string text() const {
    std::string s;
    append_to(s);
    return s;
  }
  static constexpr size_t kMaxText = 41;  // two 20-digit numbers and the dash

  friend bool operator==(const StreamId&, const StreamId&) = default;
  friend auto operator<=>(const StreamId&, const StreamId&) = default;
};

struct StreamIdHash {
  size_t operator()(const StreamId& id) const noexcept {
    return std::hash<uint64_t>()(id.ms * 0x9E3779B97F4A7C15ULL ^ id.seq);
  }
};

}  // namespace aetl::redis
