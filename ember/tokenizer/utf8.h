// UTF-8 of one code point: encoding (for code that builds texts of code
// points: the character class table, tests) and strict decoding (the
// splitters, the class table, the newer-code-point scan).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ember {

// Appends the UTF-8 bytes of `c` (< 0x110000; surrogates are encoded as they
// come, which is invalid UTF-8: callers skip them).
inline void append_utf8(std::string& s, uint32_t c) {
  if (c < 0x80) {
    s += char(c);
  } else if (c < 0x800) {
    s += char(0xC0 | (c >> 6));
    s += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += char(0xE0 | (c >> 12));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  } else {
    s += char(0xF0 | (c >> 18));
    s += char(0x80 | ((c >> 12) & 0x3F));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  }
}

// Whether b is a continuation byte (10xxxxxx), never the start of a character.
inline bool utf8_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// The code point of the UTF-8 sequence starting at p[i] (i < n), with its
// length in `len`; len is 0 when the bytes there are not a valid sequence by
// RFC 3629 (no overlong forms, surrogates or code points past U+10FFFF),
// which is also what PCRE2_MATCH_INVALID_UTF accepts.
inline uint32_t decode_utf8(const unsigned char* p, size_t n, size_t i, uint32_t& len) {
  auto continuation = [&](size_t k) { return k < n && utf8_continuation(p[k]); };
  const unsigned b = p[i];
  len = 0;
  if (b < 0x80) {
    len = 1;
    return b;
  }
  if (b < 0xC2) return 0;  // a continuation byte, or an overlong 2-byte lead
  if (b < 0xE0) {
    if (!continuation(i + 1)) return 0;
    len = 2;
    return ((b & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu);
  }
  if (b < 0xF0) {
    if (!continuation(i + 1) || !continuation(i + 2)) return 0;
    const uint32_t c = ((b & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu);
    if (c < 0x800 || (c >= 0xD800 && c < 0xE000)) return 0;
    len = 3;
    return c;
  }
  if (b < 0xF5) {
    if (!continuation(i + 1) || !continuation(i + 2) || !continuation(i + 3)) return 0;
    const uint32_t c =
        ((b & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12) | ((p[i + 2] & 0x3Fu) << 6) | (p[i + 3] & 0x3Fu);
    if (c < 0x10000 || c > 0x10FFFF) return 0;
    len = 4;
    return c;
  }
  return 0;
}

}  // namespace ember
