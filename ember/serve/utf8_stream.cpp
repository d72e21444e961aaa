// Incremental UTF-8 validation and repair (see utf8_stream.h).
#include "ember/serve/utf8_stream.h"

#include <cstdint>

namespace ember::serve {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length a lead byte announces (0: not a lead byte), and the range the
// second byte must fall in (Unicode table 3-7), which rules out overlongs,
// surrogates and code points above U+10FFFF.
struct Lead {
  int length;
  uint8_t lo, hi;
};

Lead lead_of(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

enum class Scan { complete, incomplete, invalid };

// Looks at the sequence starting at s[i]. `used` is how many bytes it takes
// (complete) or how many bytes form its maximal invalid subpart (invalid).
Scan scan(std::string_view s, size_t i, size_t& used) {
  const Lead lead = lead_of(uint8_t(s[i]));
  if (lead.length == 0) {
    used = 1;
    return Scan::invalid;
  }
  for (int k = 1; k < lead.length; ++k) {
    if (i + size_t(k) >= s.size()) return Scan::incomplete;
    const uint8_t b = uint8_t(s[i + size_t(k)]);
    const uint8_t lo = k == 1 ? lead.lo : 0x80, hi = k == 1 ? lead.hi : 0xBF;
    if (b < lo || b > hi) {
      used = size_t(k);
      return Scan::invalid;
    }
  }
  used = size_t(lead.length);
  return Scan::complete;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t used = 0;
    if (scan(s, i, used) != Scan::complete) return false;
    i += used;
  }
  return true;
}

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    size_t used = 0;
    const Scan r = scan(pending_, i, used);
    if (r == Scan::incomplete) break;
    if (r == Scan::complete)
      out.append(pending_, i, used);
    else
      out.append(kReplacement);
    i += used;
  }
  pending_.erase(0, i);
  return out;
}

std::string Utf8Stream::finish() {
  std::string out;
  if (!pending_.empty()) out.append(kReplacement);  // a truncated sequence is one maximal subpart
  pending_.clear();
  return out;
}

}  // namespace ember::serve
