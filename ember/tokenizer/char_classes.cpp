// CharClassTable: per-code-point class flags, measured with PCRE2 (see char_classes.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "ember/tokenizer/char_classes.h"

#include <pcre2.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "ember/core/error.h"
#include "ember/tokenizer/unicode_compat.h"
#include "ember/tokenizer/utf8.h"

namespace ember {

namespace {

// Each flag's class as the split patterns write it, and the Unicode classes
// it is the union of (for the members tiktoken's newer Unicode adds).
struct ClassSource {
  uint8_t flag;
  const char* regex;
  std::array<const char*, 5> unicode_classes;
};
constexpr std::array<ClassSource, 5> kClasses = {{
    {kClassLetter, R"(\p{L})", {"L"}},
    {kClassNumber, R"(\p{N})", {"N"}},
    {kClassSpace, R"(\s)", {}},
    {kClassUpperish, R"([\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}])", {"Lu", "Lt", "Lm", "Lo", "M"}},
    {kClassLowerish, R"([\p{Ll}\p{Lm}\p{Lo}\p{M}])", {"Ll", "Lm", "Lo", "M"}},
}};

// The five classes compiled as "one or more" (possessive: a run of a million
// characters must not grow a backtracking stack), JIT where available.
// Widened, adapt_pattern_for_pcre2 turns each into one bracketed class with
// tiktoken's members; otherwise only \s is rewritten (to White_Space) and the
// Unicode classes stay PCRE2's own, several times faster to scan because their
// lookup is a table, not a list of added ranges.
struct ClassRegexes {
  std::array<pcre2_code*, kClasses.size()> code{};
  pcre2_match_data* data = nullptr;
  explicit ClassRegexes(bool widened) {
    for (size_t i = 0; i < kClasses.size(); ++i) {
      const bool rewrite = widened || kClasses[i].flag == kClassSpace;
      const std::string pattern = (rewrite ? adapt_pattern_for_pcre2(kClasses[i].regex) : kClasses[i].regex) + std::string("++");
      int error = 0;
      PCRE2_SIZE offset = 0;
      code[i] = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
      if (!code[i]) fail("tokenizer", "character class ", kClasses[i].regex, " does not compile (PCRE2 error ", error, ")");
      pcre2_jit_compile(code[i], PCRE2_JIT_COMPLETE);  // falls back to the interpreter when it fails
    }
    data = pcre2_match_data_create(1, nullptr);
    if (!data) fail("tokenizer", "out of memory creating PCRE2 match data");
  }
  ~ClassRegexes() {
    pcre2_match_data_free(data);
    for (pcre2_code* c : code) pcre2_code_free(c);
  }
  ClassRegexes(const ClassRegexes&) = delete;
  ClassRegexes& operator=(const ClassRegexes&) = delete;
};

}  // namespace

std::vector<uint8_t> char_class_flags_by_regex(uint32_t first, uint32_t last) {
  // The code points, in order, as one UTF-8 text (surrogates are not
  // characters); each class regex is run over it and marks the runs it matches.
  std::string text;
  text.reserve((size_t(last) - first + 1) * 4);
  for (uint32_t c = first; c <= last; ++c)
    if (c < 0xD800 || c >= 0xE000) append_utf8(text, c);
  std::vector<uint8_t> flags(size_t(last) - first + 1, 0);
  ClassRegexes rx(false);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const auto bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t k = 0; k < kClasses.size(); ++k) {
    size_t pos = 0;
    while (pos < text.size()) {
      const int rc = pcre2_match(rx.code[k], subject, text.size(), pos, PCRE2_NO_UTF_CHECK, rx.data, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) fail("tokenizer", "building the character class table: PCRE2 error ", rc);
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(rx.data);
      for (size_t i = ov[0]; i < ov[1];) {
        uint32_t len;
        flags[decode_utf8(bytes, text.size(), i, len) - first] |= kClasses[k].flag;  // valid: we wrote it
        i += len;
      }
      pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    // What adapt_pattern_for_pcre2 would add to the class: tiktoken's newer members.
    for (const char* name : kClasses[k].unicode_classes) {
      if (!name) continue;
      const auto members = newer_class_members().find(name);
      if (members == newer_class_members().end())
        fail("tokenizer", "unicode_table.inc has no row for class ", name, " (regenerate it with tests/conformance/tiktoken_unicode_table.py)");
      for (auto [lo, hi] : members->second)
        for (uint32_t c = std::max<uint32_t>(lo, first); c <= hi && c <= last; ++c) flags[c - first] |= kClasses[k].flag;
    }
  }
  return flags;
}

CharClassTable::CharClassTable() {
  // Planes 0-3 hold everything assigned but the tags and variation selectors
  // of plane 14; the other planes stay 0 (see the header).
  std::vector<uint8_t> flat(0x110000, 0);
  for (auto [first, last] : {std::pair<uint32_t, uint32_t>{0, 0x3FFFF}, {0xE0000, 0xEFFFF}}) {
    const std::vector<uint8_t> part = char_class_flags_by_regex(first, last);
    std::copy(part.begin(), part.end(), flat.begin() + first);
  }
  // Two levels: most 256-code-point blocks repeat (all zero, all letters).
  block_of_.resize(0x110000 / 256);
  std::map<std::string, uint16_t> seen;
  for (size_t b = 0; b < block_of_.size(); ++b) {
    const std::string block(reinterpret_cast<const char*>(flat.data()) + b * 256, 256);
    auto [it, fresh] = seen.emplace(block, uint16_t(seen.size()));
    if (fresh) blocks_.insert(blocks_.end(), block.begin(), block.end());
    block_of_[b] = it->second;
  }
}

const CharClassTable& char_classes() {
  static const CharClassTable table;
  return table;
}

uint8_t char_class_flags_of(uint32_t code_point) {
  static const ClassRegexes rx(true);
  static std::mutex mutex;  // the match data is shared
  std::string s;
  append_utf8(s, code_point);
  std::lock_guard<std::mutex> lock(mutex);
  uint8_t flags = 0;
  for (size_t k = 0; k < kClasses.size(); ++k) {
    const int rc = pcre2_match(rx.code[k], reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0,
                               PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, rx.data, nullptr);
    if (rc > 0) flags |= kClasses[k].flag;
  }
  return flags;
}

}  // namespace ember
