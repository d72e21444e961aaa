// The Unicode character classes the OpenAI split patterns use, one byte of
// flags per code point, with the meaning tiktoken's Rust regex gives them.
//
// The hand-written splitters (builtin_split.h) classify characters through
// this table instead of asking a regex engine. It is not a copy of the
// Unicode database: it is built once per process by PCRE2 itself, scanning
// every code point of planes 0-3 and 14 with the patterns' classes, plus the
// members unicode_compat.h adds to them for tiktoken's newer Unicode: what
// adapt_pattern_for_pcre2's rewritten classes hold, so it agrees with the
// PCRE2 path, and therefore with tiktoken, by construction
// (CharClasses.TableAgreesWithMatchingEachCodePointAlone compares it with the
// rewritten classes themselves). Planes 4-13, 15 and 16
// hold no letters, digits, marks or spaces (unassigned or private use;
// CharClasses.OtherPlanesHoldNoClassedCodePoints checks that against PCRE2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember {

enum CharClassFlag : uint8_t {
  kClassLetter = 1,      // \p{L}
  kClassNumber = 2,      // \p{N}
  kClassSpace = 4,       // \s: Rust's White_Space
  kClassUpperish = 8,    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k's first letter class)
  kClassLowerish = 16,   // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k's second letter class)
};

class CharClassTable {
 public:
  // Builds the table (about 20 ms; see char_classes.cpp). Use char_classes().
  CharClassTable();
  uint8_t flags(uint32_t code_point) const {
    if (code_point >= 0x110000) return 0;
    return blocks_[size_t(block_of_[code_point >> 8]) * 256 + (code_point & 255)];
  }

 private:
  std::vector<uint16_t> block_of_;  // 256-code-point block -> index of its flags in blocks_
  std::vector<uint8_t> blocks_;     // distinct blocks of 256 flag bytes
};

// The process-wide table, built on first use (thread-safe).
const CharClassTable& char_classes();

// The flags of code points first..last (surrogates 0), found as the table
// finds them: each class regex run over the range as one text (ms per plane),
// PCRE2's Unicode classes plus the members unicode_compat adds for tiktoken.
std::vector<uint8_t> char_class_flags_by_regex(uint32_t first, uint32_t last);

// The flags of one code point found another way, by anchored matches of the
// widened class regexes (adapt_pattern_for_pcre2) against it alone
// (microseconds each; for tests).
uint8_t char_class_flags_of(uint32_t code_point);

}  // namespace ember
