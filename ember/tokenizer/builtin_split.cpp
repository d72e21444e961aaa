// The GPT-2, cl100k and o200k split patterns written out by hand (see builtin_split.h).
#include "ember/tokenizer/builtin_split.h"

#include <array>
#include <cstdint>

#include "ember/tokenizer/char_classes.h"
#include "ember/tokenizer/pretokenizer.h"
#include "ember/tokenizer/utf8.h"

namespace ember {

namespace {

constexpr size_t kNoMatch = static_cast<size_t>(-1);
constexpr size_t kUnbounded = static_cast<size_t>(-1);

// Flags of one character: the table's classes (low byte) and what the
// patterns also name: valid UTF-8 at all, [\r\n], '/'.
constexpr uint16_t kValid = 1 << 8, kLineBreakChar = 1 << 9, kSlashChar = 1 << 10;

// A character class as the patterns use them: the character has one of `any`
// and none of `none`.
struct Class {
  uint16_t any, none;
};
constexpr Class kLetter{kClassLetter, 0};                                       // \p{L}
constexpr Class kNumber{kClassNumber, 0};                                       // \p{N}
constexpr Class kSpace{kClassSpace, 0};                                         // \s
constexpr Class kUpperish{kClassUpperish, 0};                                   // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
constexpr Class kLowerish{kClassLowerish, 0};                                   // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
constexpr Class kOther{kValid, kClassSpace | kClassLetter | kClassNumber};      // [^\s\p{L}\p{N}]
constexpr Class kNotBreakLetterNumber{kValid, kLineBreakChar | kClassLetter | kClassNumber};  // [^\r\n\p{L}\p{N}]
constexpr Class kLineBreak{kLineBreakChar, 0};                                  // [\r\n]
constexpr Class kLineBreakOrSlash{kLineBreakChar | kSlashChar, 0};              // [\r\n/]

// One quantified class of a sequence: at least `min`, at most `max` characters.
struct Item {
  Class cls;
  size_t min, max;
};

std::array<uint16_t, 128> make_ascii_flags() {
  std::array<uint16_t, 128> f{};
  for (uint32_t c = 0; c < 128; ++c) {
    f[c] = char_classes().flags(c) | kValid;
    if (c == '\r' || c == '\n') f[c] |= kLineBreakChar;
    if (c == '/') f[c] |= kSlashChar;
  }
  return f;
}

const std::array<uint16_t, 128>& ascii_flags() {
  static const std::array<uint16_t, 128> f = make_ascii_flags();
  return f;
}

// Matching over one text. Positions are byte offsets; a "character" is a
// valid UTF-8 sequence (RFC 3629: no overlongs, surrogates or code points past
// U+10FFFF), and any other byte is an invalid unit of length 1 that no class
// holds, as under PCRE2_MATCH_INVALID_UTF.
class Splitter {
 public:
  explicit Splitter(std::string_view text)
      : p_(reinterpret_cast<const unsigned char*>(text.data())),
        n_(text.size()),
        table_(char_classes()),
        ascii_(ascii_flags()) {}

  struct Char {
    uint16_t flags;  // 0 for an invalid byte
    uint32_t len;
  };

  // The character at i < n_.
  Char at(size_t i) const {
    if (p_[i] < 0x80) return {ascii_[p_[i]], 1};
    uint32_t len;
    const uint32_t c = decode_utf8(p_, n_, i, len);
    if (len == 0) return {0, 1};
    return {static_cast<uint16_t>(table_.flags(c) | kValid), len};
  }

  static bool in(Char c, Class k) { return (c.flags & k.any) != 0 && (c.flags & k.none) == 0; }
  bool is(size_t i, Class k) const { return i < n_ && in(at(i), k); }
  bool valid_at(size_t i) const { return (at(i).flags & kValid) != 0; }

  // The end of the longest run of at most `max` characters of class k from i;
  // how many in *count.
  size_t run(size_t i, Class k, size_t max = kUnbounded, size_t* count = nullptr) const {
    size_t got = 0;
    while (got < max && i < n_) {
      const Char c = at(i);
      if (!in(c, k)) break;
      i += c.len;
      ++got;
    }
    if (count) *count = got;
    return i;
  }

  // The start of the character that ends at i (inside a run of valid text).
  size_t back(size_t i) const {
    do --i;
    while (utf8_continuation(p_[i]));
    return i;
  }

  // The end of the first match of items[0..count) at i, trying the greedy
  // quantifiers' lengths in the regex's order (longest first, the last item
  // giving back first), or kNoMatch.
  size_t sequence(const Item* items, size_t count, size_t i) const {
    if (count == 0) return i;
    size_t got;
    size_t end = run(i, items[0].cls, items[0].max, &got);
    if (got < items[0].min) return kNoMatch;
    while (true) {
      const size_t rest = sequence(items + 1, count - 1, end);
      if (rest != kNoMatch) return rest;
      if (got == items[0].min) return kNoMatch;
      end = back(end);
      --got;
    }
  }

  // 's|'t|'re|'ve|'m|'ll|'d at i (case-insensitively under (?i), where the
  // long s U+017F folds to s as well): the end, or kNoMatch.
  size_t contraction(size_t i, bool fold_case) const {
    if (i >= n_ || p_[i] != '\'') return kNoMatch;
    auto letter = [&](size_t j, unsigned char want) -> size_t {  // its length in bytes, 0 if absent
      if (j >= n_) return 0;
      if (p_[j] == want || (fold_case && p_[j] == want - 32)) return 1;
      if (fold_case && want == 's' && p_[j] == 0xC5 && j + 1 < n_ && p_[j + 1] == 0xBF) return 2;
      return 0;
    };
    const size_t j = i + 1;
    for (unsigned char one : {'s', 't', 'm', 'd'})
      if (size_t len = letter(j, one)) return j + len;
    for (const char* two : {"re", "ve", "ll"}) {
      if (size_t first = letter(j, two[0]))
        if (size_t second = letter(j + first, two[1])) return j + first + second;
    }
    return kNoMatch;
  }

  // At a whitespace character: \s+(?!\S)|\s+. The look-ahead holds at the end
  // of the text and before invalid UTF-8 (\S matches neither).
  size_t whitespace(size_t i) const {
    const size_t end = run(i, kSpace);
    if (end == i) return i;  // not whitespace: no alternative matched (see split_loop)
    if (end >= n_ || !valid_at(end)) return end;
    const size_t shorter = back(end);  // leave the last space to the next piece
    return shorter > i ? shorter : end;
  }

  // At a whitespace character: \s*[\r\n]+ (through the run's last line
  // break), else whitespace().
  size_t line_breaks_or_whitespace(size_t i) const {
    const size_t end = run(i, kSpace);
    for (size_t k = end; k > i;) {
      k = back(k);
      if (p_[k] == '\r' || p_[k] == '\n') return k + 1;
    }
    return whitespace(i);
  }

  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  size_t gpt2(size_t i) const {
    if (const size_t end = contraction(i, false); end != kNoMatch) return end;
    const bool space = p_[i] == ' ';
    for (Class k : {kLetter, kNumber, kOther}) {
      if (space && is(i + 1, k)) return run(i + 1, k);
      if (is(i, k)) return run(i, k);
    }
    return whitespace(i);
  }

  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  size_t cl100k(size_t i) const {
    if (const size_t end = contraction(i, true); end != kNoMatch) return end;
    const Char c = at(i);
    if (in(c, kNotBreakLetterNumber) && is(i + c.len, kLetter)) return run(i + c.len, kLetter);
    if (in(c, kLetter)) return run(i, kLetter);
    if (in(c, kNumber)) return run(i, kNumber, 3);
    if (p_[i] == ' ' && is(i + 1, kOther)) return run(run(i + 1, kOther), kLineBreak);
    if (in(c, kOther)) return run(run(i, kOther), kLineBreak);
    return line_breaks_or_whitespace(i);
  }

  // [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)?
  // |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?
  // |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
  size_t o200k(size_t i) const {
    static constexpr Item kCasedWord[] = {{kNotBreakLetterNumber, 0, 1}, {kUpperish, 0, kUnbounded}, {kLowerish, 1, kUnbounded}};
    static constexpr Item kUpperWord[] = {{kNotBreakLetterNumber, 0, 1}, {kUpperish, 1, kUnbounded}, {kLowerish, 0, kUnbounded}};
    for (const Item* word : {kCasedWord, kUpperWord}) {
      const size_t end = sequence(word, 3, i);
      if (end == kNoMatch) continue;
      const size_t with_suffix = contraction(end, true);
      return with_suffix != kNoMatch ? with_suffix : end;
    }
    const Char c = at(i);
    if (in(c, kNumber)) return run(i, kNumber, 3);
    if (p_[i] == ' ' && is(i + 1, kOther)) return run(run(i + 1, kOther), kLineBreakOrSlash);
    if (in(c, kOther)) return run(run(i, kOther), kLineBreakOrSlash);
    return line_breaks_or_whitespace(i);
  }

 private:
  const unsigned char* p_;
  size_t n_;
  const CharClassTable& table_;
  const std::array<uint16_t, 128>& ascii_;
};

template <BuiltinPattern P>
size_t split_loop(std::string_view text, size_t start, std::vector<std::string_view>& out, size_t max_pieces) {
  const Splitter s(text);
  const size_t n = text.size();
  const size_t limit = piece_limit(out.size(), max_pieces);
  size_t pos = start;
  while (pos < n) {
    if (out.size() >= limit) return pos;
    size_t end;
    if (!s.valid_at(pos)) {
      // Invalid UTF-8 that no pattern item accepts: one piece up to the next character.
      end = pos + 1;
      while (end < n && !s.valid_at(end)) ++end;
    } else if constexpr (P == BuiltinPattern::gpt2) {
      end = s.gpt2(pos);
    } else if constexpr (P == BuiltinPattern::cl100k) {
      end = s.cl100k(pos);
    } else {
      end = s.o200k(pos);
    }
    // Every valid character starts a match of some alternative (each is a
    // letter, number, space or other). Should a future class table break that,
    // take the character alone rather than loop: PCRE2 would leave it to a gap.
    if (end <= pos) end = pos + s.at(pos).len;
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return n;
}

}  // namespace

BuiltinPattern builtin_pattern_of(std::string_view pattern) {
  if (pattern == kPatternGpt2) return BuiltinPattern::gpt2;
  if (pattern == kPatternCl100k) return BuiltinPattern::cl100k;
  if (pattern == kPatternO200k) return BuiltinPattern::o200k;
  return BuiltinPattern::none;
}

size_t builtin_split_some(BuiltinPattern pattern, std::string_view text, size_t start,
                          std::vector<std::string_view>& out, size_t max_pieces) {
  switch (pattern) {
    case BuiltinPattern::gpt2: return split_loop<BuiltinPattern::gpt2>(text, start, out, max_pieces);
    case BuiltinPattern::cl100k: return split_loop<BuiltinPattern::cl100k>(text, start, out, max_pieces);
    case BuiltinPattern::o200k: return split_loop<BuiltinPattern::o200k>(text, start, out, max_pieces);
    case BuiltinPattern::none: break;
  }
  return start;
}

}  // namespace ember
