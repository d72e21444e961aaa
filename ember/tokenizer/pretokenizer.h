// Regex pre-tokenization for byte-level BPE: splits text into the pieces that
// BPE merges inside of (never across), exactly like tiktoken's split patterns.
//
// Backed by PCRE2 compiled in UTF + UCP mode with the JIT. Text does not have
// to be valid UTF-8: the pattern is compiled with PCRE2_MATCH_INVALID_UTF, so
// invalid bytes are never matched by any pattern item, and split() hands every
// stretch of bytes no match covered to the caller as a piece of its own. The
// pieces therefore always tile the text exactly, which is what lets any byte
// string round-trip through encode/decode.
//
// The pattern is also compiled in a rewritten form (unicode_compat.h) whose
// Unicode classes and \s mean exactly what they mean to tiktoken's Rust
// regex. That form is slower, and differs only on rare code points, so it runs
// only for texts that contain one (needs_exact()); pattern() returns the
// pattern as given.
//
// The three OpenAI patterns (kPatternGpt2, kPatternCl100k, kPatternO200k) are
// split by hand-written matchers instead (builtin_split.h): the same pieces as
// the exact form for every text, and whole encodes 1.6-2.6x faster
// (docs/PERFORMANCE.md). Engine::pcre2, or EMBER_SPLIT=pcre2 in the
// environment, keeps PCRE2 for them too (tests and benchmarks compare the two).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

// The split patterns of the three OpenAI encodings (the same strings as
// tiktoken's `pat_str`), so a tokenizer can be trained without any data files.
extern const char* const kPatternGpt2;
extern const char* const kPatternCl100k;
extern const char* const kPatternO200k;

// "gpt2", "cl100k"/"cl100k_base", "o200k"/"o200k_base" name the patterns
// above; anything else is taken to be a regex itself.
std::string resolve_split_pattern(const std::string& name_or_regex);

class Pretokenizer {
 public:
  enum class Engine { automatic, pcre2 };
  // Compiles `pattern`; throws ember::Error("[tokenizer] ...") naming the
  // offset and PCRE2's reason when it does not compile.
  explicit Pretokenizer(std::string pattern, Engine engine = Engine::automatic);
  ~Pretokenizer();
  Pretokenizer(Pretokenizer&&) noexcept;
  Pretokenizer& operator=(Pretokenizer&&) noexcept;
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  // Appends the pieces of `text` to `out` (views into `text`, in order,
  // non-empty, concatenating to `text`). Thread-safe: the compiled pattern is
  // shared read-only and each call uses its own match state.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  // Whether `text` must be split with the rewritten pattern (see above).
  bool needs_exact(std::string_view text) const;

  // Resumable form for long texts: appends at most about `max_pieces` pieces
  // of text[start..] and returns where to resume (text.size() when done).
  // Matching always sees the whole text, so the pieces are the same as
  // split()'s when `exact` is needs_exact(text) (or true).
  size_t split_some(std::string_view text, size_t start, std::vector<std::string_view>& out, size_t max_pieces,
                    bool exact) const;

  const std::string& pattern() const { return pattern_; }
  // Whether the hand-written splitter runs (the pattern is one of the three
  // and PCRE2 was not asked for).
  bool builtin() const;

 private:
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember
