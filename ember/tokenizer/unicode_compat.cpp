// Split-pattern rewriting for PCRE2 (see unicode_compat.h) and its table.
#include "ember/tokenizer/unicode_compat.h"

#include <algorithm>
#include <bitset>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "ember/tokenizer/utf8.h"

namespace ember {

using Ranges = std::vector<std::pair<unsigned, unsigned>>;

// Code points in each class for tiktoken (Unicode 16) but not for PCRE2 10.42 (Unicode 14).
const std::map<std::string, Ranges>& newer_class_members() {
  static const std::map<std::string, Ranges> table = {
#include "ember/tokenizer/unicode_table.inc"
  };
  return table;
}

namespace {

// Rust's \s: the White_Space property.
constexpr const char* kWhiteSpace =
    R"(\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string code_point(unsigned c) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "\\x{%X}", c);
  return buf;
}

std::string class_body(const std::string& name, bool negated_escape) {
  std::string body = std::string(negated_escape ? "\\P{" : "\\p{") + name + "}";
  if (negated_escape) return body;
  auto it = newer_class_members().find(name);
  if (it == newer_class_members().end()) return body;
  for (const auto& [lo, hi] : it->second) body += lo == hi ? code_point(lo) : code_point(lo) + "-" + code_point(hi);
  return body;
}

// Every code point the rewriting touches, as sorted disjoint ranges, plus a
// bitmap of the 256-code-point pages that hold any, so the scan of ordinary
// text costs one bit test per multi-byte character.
struct AffectedSet {
  Ranges ranges;
  std::bitset<0x110000 / 256> pages;
  AffectedSet() {
    ranges.push_back({0x180E, 0x180E});  // PCRE2's \s takes it, White_Space does not
    for (const auto& [name, rs] : newer_class_members()) ranges.insert(ranges.end(), rs.begin(), rs.end());
    std::sort(ranges.begin(), ranges.end());
    for (const auto& [lo, hi] : ranges)
      for (unsigned page = lo >> 8; page <= hi >> 8; ++page) pages.set(page);
  }
  bool contains(unsigned c) const {
    if (c >= 0x110000 || !pages.test(c >> 8)) return false;
    auto it = std::upper_bound(ranges.begin(), ranges.end(), std::pair<unsigned, unsigned>{c, 0xFFFFFFFFu});
    return it != ranges.begin() && std::prev(it)->second >= c;
  }
};

const AffectedSet& affected() {
  static const AffectedSet set;
  return set;
}

}  // namespace

bool has_newer_code_points(std::string_view text) {
  const AffectedSet& set = affected();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  // Everything affected is U+0800 or above: only 3- and 4-byte sequences
  // (lead byte >= 0xE0) need decoding.
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0xE0) continue;
    uint32_t len;
    const uint32_t c = decode_utf8(p, n, i, len);
    if (len == 0) continue;
    if (set.contains(c)) return true;
    i += len - 1;
  }
  return false;
}

std::string adapt_pattern_for_pcre2(const std::string& p) {
  std::string out;
  out.reserve(p.size() * 2);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c != '\\' || i + 1 >= p.size()) {
      if (c == '[' && !in_class) {
        in_class = true;
        out += c;
        // A ']' right after '[' or '[^' is a literal, not the end.
        if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
        if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
        continue;
      }
      if (c == ']' && in_class) in_class = false;
      out += c;
      continue;
    }
    const char e = p[i + 1];
    if ((e == 'p' || e == 'P') && i + 2 < p.size() && p[i + 2] == '{') {
      size_t close = p.find('}', i + 3);
      if (close != std::string::npos) {
        std::string name = p.substr(i + 3, close - i - 3);
        const bool known = newer_class_members().count(name) > 0;
        if (known && e == 'p') {
          // Appended piece by piece: `"[" + std::string&&` trips GCC 12's false -Wrestrict (PR 105651).
          if (!in_class) out += '[';
          out += class_body(name, false);
          if (!in_class) out += ']';
          i = close;
          continue;
        }
        if (known && !in_class) {  // \P{X} outside a class: everything but the widened \p{X}
          out += "[^";
          out += class_body(name, false);
          out += ']';
          i = close;
          continue;
        }
      }
    } else if (e == 's') {
      out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      ++i;
      continue;
    } else if (e == 'S' && !in_class) {
      out += "[^" + std::string(kWhiteSpace) + "]";
      ++i;
      continue;
    }
    out += c;
    out += e;
    ++i;
  }
  return out;
}

}  // namespace ember
