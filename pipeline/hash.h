#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace aetl {

/// A stable 64-bit FNV-1a hash as 16 hex digits: for file-name suffixes and
/// resume keys, where the value must not change between builds (unlike std::hash).
inline std::string fnv1a_hex(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace aetl
