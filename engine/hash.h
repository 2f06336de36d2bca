#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <openssl/sha.h>

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

/// SHA-256 as 64 hex digits: for identities derived from text that must not be
/// recoverable from them (URLs with passwords) and must not collide.
inline std::string sha256_hex(std::string_view s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

}  // namespace aetl
