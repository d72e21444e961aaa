// The hand-written splitters for the GPT-2, cl100k and o200k patterns against
// PCRE2 running the same patterns with tiktoken's Unicode semantics: the
// character class table they read, every BMP code point in several contexts,
// every pair of characters from each class, random strings with invalid
// UTF-8, and resuming in small steps.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ember/core/error.h"
#include "ember/tokenizer/builtin_split.h"
#include "ember/tokenizer/char_classes.h"
#include "ember/tokenizer/pretokenizer.h"
#include "ember/tokenizer/unicode_compat.h"
#include "ember/tokenizer/utf8.h"
#include "tokenizer/tiktoken_data.h"

namespace ember {
namespace {

std::string utf8(uint32_t c) {
  std::string s;
  append_utf8(s, c);
  return s;
}

bool surrogate(uint32_t c) { return c >= 0xD800 && c < 0xE000; }

struct Engines {
  const char* name;
  Pretokenizer builtin, pcre2;
};

std::vector<Engines>& engines() {
  static std::vector<Engines> all = [] {
    std::vector<Engines> v;
    for (auto [name, pattern] : {std::pair{"gpt2", kPatternGpt2}, {"cl100k", kPatternCl100k}, {"o200k", kPatternO200k}})
      v.push_back({name, Pretokenizer(pattern), Pretokenizer(pattern, Pretokenizer::Engine::pcre2)});
    return v;
  }();
  return all;
}

std::vector<std::string> pieces(const Pretokenizer& pre, const std::string& text, bool exact) {
  std::vector<std::string_view> views;
  pre.split_some(text, 0, views, static_cast<size_t>(-1), exact);
  return {views.begin(), views.end()};
}

// Splits `text` both ways and reports the first piece where they differ.
::testing::AssertionResult same_pieces(const Engines& e, const std::string& text) {
  const std::vector<std::string> want = pieces(e.pcre2, text, true), got = pieces(e.builtin, text, false);
  if (want == got) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  auto show = [](const std::vector<std::string>& v, size_t i) {
    if (i >= v.size()) return std::string("(none)");
    std::string out;
    for (unsigned char ch : v[i]) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), ch >= 0x20 && ch < 0x7F ? "%c" : "\\x%02X", ch);
      out += buf;
    }
    return "\"" + out + "\"";
  };
  return ::testing::AssertionFailure() << e.name << ": piece " << i << " is " << show(got, i) << ", PCRE2 has "
                                       << show(want, i) << " (text of " << text.size() << " bytes)";
}

// A few code points of every distinct flag value, plus the characters the
// patterns name (apostrophe, letters of the contractions and the long s that
// folds to s, line breaks, slash) and whitespace PCRE2 and Rust disagree on.
std::vector<std::string> alphabet() {
  std::map<uint8_t, std::vector<uint32_t>> by_flags;
  for (uint32_t c = 0x80; c < 0x40000; ++c) {
    if (surrogate(c)) continue;
    auto& v = by_flags[char_classes().flags(c)];
    if (v.size() < 3) v.push_back(c);
  }
  std::vector<std::string> out;
  for (const auto& [flags, cps] : by_flags)
    for (uint32_t c : cps) out.push_back(utf8(c));
  for (uint32_t c : {0x17Fu, 0x85u, 0xA0u, 0x180Eu, 0x2028u, 0x3000u, 0x1C89u, 0x0301u, 0xE0100u, 0x10FFFFu})
    out.push_back(utf8(c));
  for (const char* s : {"'", "s", "S", "t", "T", "re", "rE", "Ve", "ll", "LL", "m", "M", "d", "D", "x", "X", "7",
                        " ", "  ", "\t", "\r", "\n", "\r\n", "/", "!", ".", "\"", "_"})
    out.push_back(s);
  // Invalid UTF-8: stray continuation, truncated 2/3/4-byte sequences,
  // overlong, surrogate, past U+10FFFF, bytes that never start anything.
  for (const char* s : {"\x80", "\xC3", "\xE4\xB8", "\xF0\x9F\x98", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                        "\xFF", "\xFE"})
    out.push_back(s);
  return out;
}

// Two ways of asking PCRE2 agree (a slip in the scan or in the two-level
// table would show); the classes themselves are checked against tiktoken by
// the conformance sweep over every code point, and against Unicode by the
// spot checks below.
TEST(CharClasses, TableAgreesWithMatchingEachCodePointAlone) {
  const CharClassTable& t = char_classes();
  for (uint32_t c = 0; c < 0x110000; c += (c < 0x3000 ? 1 : 37)) {
    if (surrogate(c)) continue;
    ASSERT_EQ(t.flags(c), char_class_flags_of(c)) << "U+" << std::hex << c;
  }
  // Every code point tiktoken's newer Unicode adds to a class (the table adds
  // those ranges itself; the widened regexes hold them as written).
  for (const auto& [name, ranges] : newer_class_members())
    for (auto [lo, hi] : ranges)
      for (uint32_t c = lo; c <= hi; ++c) ASSERT_EQ(t.flags(c), char_class_flags_of(c)) << name << " U+" << std::hex << c;
  const uint8_t L = kClassLetter, N = kClassNumber, S = kClassSpace, U = kClassUpperish, W = kClassLowerish;
  EXPECT_EQ(t.flags('a'), L | W);
  EXPECT_EQ(t.flags('A'), L | U);
  EXPECT_EQ(t.flags('5'), N);
  EXPECT_EQ(t.flags(' '), S);
  EXPECT_EQ(t.flags('\n'), S);
  EXPECT_EQ(t.flags('\''), 0);
  EXPECT_EQ(t.flags(0x0301), U | W);      // combining acute accent: a mark, not a letter
  EXPECT_EQ(t.flags(0x4E2D), L | U | W);  // 中, Lo
  EXPECT_EQ(t.flags(0x02B0), L | U | W);  // ʰ, Lm
  EXPECT_EQ(t.flags(0x01C5), L | U);      // ǅ, Lt
  EXPECT_EQ(t.flags(0x0660), N);          // Arabic-Indic zero, Nd
  EXPECT_EQ(t.flags(0x2167), N);          // Roman numeral eight, Nl
  EXPECT_EQ(t.flags(0x00BD), N);          // ½, No
  EXPECT_EQ(t.flags(0x3000), S);          // ideographic space
  EXPECT_EQ(t.flags(0x0085), S);          // next line: White_Space
  EXPECT_EQ(t.flags(0x180E), 0);          // Mongolian vowel separator: \s to PCRE2, not to Rust
  EXPECT_EQ(t.flags(0x1C89), L | U);      // Cyrillic capital TJE, new in Unicode 16
  EXPECT_EQ(t.flags(0xE0100), U | W);     // variation selector 17, Mn
  EXPECT_EQ(t.flags(0x10FFFF), 0);
  EXPECT_EQ(t.flags(0x110000), 0);
}

TEST(CharClasses, OtherPlanesHoldNoClassedCodePoints) {
  // The table scans planes 0-3 and 14 only; the rest must be empty.
  for (auto [first, last] : {std::pair<uint32_t, uint32_t>{0x40000, 0xDFFFF}, {0xF0000, 0x10FFFF}}) {
    const std::vector<uint8_t> flags = char_class_flags_by_regex(first, last);
    for (size_t i = 0; i < flags.size(); ++i) ASSERT_EQ(flags[i], 0) << "U+" << std::hex << first + i;
  }
}

TEST(BuiltinSplit, ChosenForTheThreePatternsOnly) {
  EXPECT_EQ(builtin_pattern_of(kPatternGpt2), BuiltinPattern::gpt2);
  EXPECT_EQ(builtin_pattern_of(kPatternCl100k), BuiltinPattern::cl100k);
  EXPECT_EQ(builtin_pattern_of(kPatternO200k), BuiltinPattern::o200k);
  EXPECT_EQ(builtin_pattern_of(std::string(kPatternGpt2) + "|x"), BuiltinPattern::none);
  EXPECT_TRUE(Pretokenizer(kPatternO200k).builtin());
  EXPECT_FALSE(Pretokenizer(kPatternO200k, Pretokenizer::Engine::pcre2).builtin());
  EXPECT_FALSE(Pretokenizer(R"(\w+|\s+)").builtin());
  // The built-in splitter is always exact: no text asks for the rewritten regex.
  EXPECT_FALSE(Pretokenizer(kPatternCl100k).needs_exact("hello \u1c89"));
}

TEST(BuiltinSplit, TheSharedTiktokenEncodingsGetTheBuiltInSplitters) {
  // encodings.json's split patterns must equal ours byte for byte, or loading
  // them would silently fall back to PCRE2 (same ids, a third of the speed).
  const std::pair<const char*, BuiltinPattern> expected[] = {
      {"gpt2", BuiltinPattern::gpt2}, {"cl100k_base", BuiltinPattern::cl100k}, {"o200k_base", BuiltinPattern::o200k}};
  int checked = 0;
  for (auto [name, pattern] : expected) {
    if (!test::have_tiktoken(name)) continue;
    EXPECT_EQ(builtin_pattern_of(test::tiktoken_encoding(name).pattern()), pattern) << name;
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no tiktoken files under " << test::tiktoken_dir();
}

TEST(BuiltinSplit, EnvironmentChoosesTheSplitter) {
  const char* saved = std::getenv("EMBER_SPLIT");
  const std::string before = saved ? saved : "";
  setenv("EMBER_SPLIT", "pcre2", 1);
  EXPECT_FALSE(Pretokenizer(kPatternGpt2).builtin());
  setenv("EMBER_SPLIT", "builtin", 1);
  EXPECT_TRUE(Pretokenizer(kPatternGpt2).builtin());
  setenv("EMBER_SPLIT", "pcre", 1);
  try {
    Pretokenizer p(kPatternGpt2);
    ADD_FAILURE() << "EMBER_SPLIT=pcre was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("EMBER_SPLIT=pcre is not a splitter: use builtin (the default) or pcre2"),
              std::string::npos)
        << e.what();
  }
  if (saved) setenv("EMBER_SPLIT", before.c_str(), 1);
  else unsetenv("EMBER_SPLIT");
}

TEST(BuiltinSplit, KnownPieces) {
  auto split = [](const char* pattern, const std::string& text) {
    return pieces(Pretokenizer(pattern), text, false);
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split(kPatternGpt2, "Hello world's  12 x!!\n\n y"),
            (V{"Hello", " world", "'s", " ", " 12", " x", "!!", "\n\n", " y"}));
  EXPECT_EQ(split(kPatternCl100k, "I'LL pay 12345 now\r\n\r\n  ok"),
            (V{"I", "'LL", " pay", " ", "123", "45", " now", "\r\n\r\n", " ", " ok"}));
  EXPECT_EQ(split(kPatternO200k, "HELLOWorld don't ÉCOLE/école 中文。\n"),
            (V{"HELLOWorld", " don't", " ÉCOLE", "/école", " 中文", "。\n"}));
  // Invalid UTF-8 between matches is a piece of its own.
  EXPECT_EQ(split(kPatternO200k, "ab\xff\xfe cd"), (V{"ab", "\xff\xfe", " cd"}));
}

TEST(BuiltinSplit, EqualsPcre2OnEveryBmpCodePointInContext) {
  // Each code point alone in order, after an apostrophe (contractions), after
  // a space and before a lowercase letter, and doubled around a line break.
  std::vector<std::string> texts(4);
  for (uint32_t c = 0; c < 0x10000; ++c) {
    if (surrogate(c)) continue;
    const std::string s = utf8(c);
    texts[0] += s;
    texts[1] += "'" + s + " ";
    texts[2] += " " + s + "a";
    texts[3] += s + "\n" + s + "  ";
  }
  for (const Engines& e : engines())
    for (const std::string& text : texts) EXPECT_TRUE(same_pieces(e, text));
}

TEST(BuiltinSplit, EqualsPcre2OnEveryPairOfCharacters) {
  const std::vector<std::string> chars = alphabet();
  for (const Engines& e : engines()) {
    for (const std::string& a : chars) {
      std::string text;  // "a b1 a b2 ..." with each pair also at the end of the text
      for (const std::string& b : chars) text += a + b + " " + a + b + "x'" + b;
      ASSERT_TRUE(same_pieces(e, text));
      ASSERT_TRUE(same_pieces(e, a));
    }
  }
}

TEST(BuiltinSplit, EqualsPcre2OnRandomStringsAndResumes) {
  const std::vector<std::string> chars = alphabet();
  std::mt19937_64 rng(2026);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const size_t atoms = 1 + rng() % 24;
    for (size_t i = 0; i < atoms; ++i) text += rng() % 8 == 0 ? std::string(1, char(rng() & 0xFF)) : chars[rng() % chars.size()];
    for (const Engines& e : engines()) {
      ASSERT_TRUE(same_pieces(e, text)) << "trial " << trial;
      std::vector<std::string_view> whole, stepped;
      e.builtin.split(text, whole);
      for (size_t pos = 0; pos < text.size();) pos = e.builtin.split_some(text, pos, stepped, 1 + trial % 3, false);
      ASSERT_EQ(stepped, whole) << e.name << " trial " << trial;
    }
  }
}

TEST(BuiltinSplit, AppendsToWhatTheVectorHolds) {
  // split() appends: pieces already in the vector stay, and all the new ones
  // follow (the piece limit counts from the vector's size, with no overflow).
  for (const Engines& e : engines()) {
    for (const Pretokenizer* pre : {&e.builtin, &e.pcre2}) {
      std::vector<std::string_view> out = {"kept"};
      pre->split("one two", out);
      EXPECT_EQ(out, (std::vector<std::string_view>{"kept", "one", " two"})) << e.name;
    }
  }
}

}  // namespace
}  // namespace ember
