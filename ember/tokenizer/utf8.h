// UTF-8 encoding of one code point, for code that builds texts of code points
// (the character class table, tests).
#pragma once

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

}  // namespace ember
