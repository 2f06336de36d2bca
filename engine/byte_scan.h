#pragma once
// Finding the next byte that needs escaping, 16 bytes at a time: most strings
// (URLs, names, ids) have none, and a byte-by-byte loop was a tenth of the
// PostgreSQL benchmark's time.
#include <cstddef>
#include <string_view>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace aetl {

/// The first index >= `from` whose byte a JSON string cannot hold as it is: a
/// control character, '"', '\\', or a byte >= 0x80 (checked as UTF-8); s.size() if none.
inline size_t find_json_special(std::string_view s, size_t from) {
  size_t i = from;
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= s.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    // Signed: bytes >= 0x80 are negative, so "< 0x20" also finds them.
    __m128i m = _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (int mask = _mm_movemask_epi8(m)) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  for (; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return i;
  }
  return s.size();
}

/// The first index >= `from` of a byte PostgreSQL's COPY text format escapes
/// ('\\', '\n', '\r', '\t'); s.size() if none.
inline size_t find_copy_special(std::string_view s, size_t from) {
  size_t i = from;
#if defined(__SSE2__)
  const __m128i backslash = _mm_set1_epi8('\\'), nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'), tab = _mm_set1_epi8('\t');
  for (; i + 16 <= s.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, backslash), _mm_cmpeq_epi8(v, nl)),
                             _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, tab)));
    if (int mask = _mm_movemask_epi8(m)) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' || c == '\n' || c == '\r' || c == '\t') return i;
  }
  return s.size();
}

}  // namespace aetl
