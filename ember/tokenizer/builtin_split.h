// Hand-written pre-tokenizers for the three OpenAI split patterns (GPT-2,
// cl100k, o200k): the same pieces as the regexes, without a regex engine.
//
// Why: PCRE2's JIT spends most of its time per match in call overhead and
// Unicode property lookups, and o200k's pattern, the longest, made the regex
// about half of o200k's encode time (docs/PERFORMANCE.md). Like llama.cpp's
// custom splitters for these patterns, each alternative is written out as the
// regex means it (leftmost alternative first, greedy quantifiers that give
// back one character at a time), over the character classes of
// char_classes.h. The Pretokenizer uses these whenever its pattern is one of
// kPatternGpt2/Cl100k/O200k verbatim, and PCRE2 for any other pattern.
//
// Equality with PCRE2 (the exact, tiktoken-semantics form) is what the tests
// and the pretokenizer fuzz target check: every code point, in and out of
// context, and random byte strings including invalid UTF-8. (It holds where
// PCRE2 finishes: on some megabyte-long runs, e.g. a mark and then 8 million
// capitals under o200k, PCRE2 stops at its match limit and reports an error,
// while these splitters stay linear.) Invalid UTF-8 is
// treated as PCRE2_MATCH_INVALID_UTF does: no pattern item matches it, and a
// stretch of it between two matches is a piece of its own.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace ember {

enum class BuiltinPattern { none, gpt2, cl100k, o200k };

// Which built-in splitter implements `pattern` (none unless it is one of the
// three pattern strings exactly).
BuiltinPattern builtin_pattern_of(std::string_view pattern);

// As Pretokenizer::split_some: appends at most about `max_pieces` pieces of
// text[start..] to `out` and returns where to resume (text.size() when done).
// `start` must be a piece boundary (0, or a value this function returned).
size_t builtin_split_some(BuiltinPattern pattern, std::string_view text, size_t start,
                          std::vector<std::string_view>& out, size_t max_pieces);

// How large `out` may grow: have + more, saturating (more is often SIZE_MAX).
inline size_t piece_limit(size_t have, size_t more) {
  return more > static_cast<size_t>(-1) - have ? static_cast<size_t>(-1) : have + more;
}

}  // namespace ember
