// Turning a stream of bytes that arrives in arbitrary pieces (one token's
// bytes at a time) into valid UTF-8 text, piece by piece.
//
// A byte-level BPE token may end in the middle of a multi-byte character, so
// the bytes of one token are not always text on their own. Utf8Stream releases
// the longest prefix that is complete UTF-8 and holds back an incomplete
// sequence at the end until the next bytes complete it. Bytes that can never
// be valid UTF-8 (a stray continuation byte, an overlong form, a surrogate, a
// sequence cut short by a byte that cannot continue it) become U+FFFD, one per
// maximal invalid subpart, as Unicode (and Python's errors="replace")
// recommend. So everything released is valid UTF-8 and can go into JSON.
#pragma once

#include <string>
#include <string_view>

namespace ember::serve {

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF).
bool is_valid_utf8(std::string_view s);

class Utf8Stream {
 public:
  // Appends bytes; returns the text that became complete (possibly empty).
  std::string push(std::string_view bytes);
  // The end of the stream: an incomplete sequence still held becomes U+FFFD.
  std::string finish();
  // Bytes held back waiting for the rest of a character (0..3).
  size_t pending() const { return pending_.size(); }

 private:
  std::string pending_;
};

}  // namespace ember::serve
