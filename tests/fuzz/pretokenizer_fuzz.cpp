// libFuzzer target for the hand-written splitters of the GPT-2, cl100k and
// o200k patterns (builtin_split.h): for ANY byte string (invalid UTF-8, NULs,
// every Unicode class) each must give exactly the pieces PCRE2 gives running
// the same pattern with tiktoken's Unicode semantics, the pieces must tile the
// input, and resuming in steps of one piece must change nothing. Run by
// scripts/fuzz.sh with tests/fuzz/pretokenizer.dict; the corpus
// tests/fuzz/corpus/pretokenizer/ is replayed by CTest (fuzz_target.h).
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ember/tokenizer/pretokenizer.h"
#include "fuzz/fuzz_target.h"

namespace {

struct Pair {
  ember::Pretokenizer builtin, pcre2;
};

const std::vector<Pair>& pairs() {
  static const std::vector<Pair> all = [] {
    std::vector<Pair> v;
    for (const char* pattern : {ember::kPatternGpt2, ember::kPatternCl100k, ember::kPatternO200k})
      v.push_back({ember::Pretokenizer(pattern), ember::Pretokenizer(pattern, ember::Pretokenizer::Engine::pcre2)});
    return v;
  }();
  return all;
}

}  // namespace

EMBER_FUZZ_TARGET(pretokenizer) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const Pair& p : pairs()) {
    if (!p.builtin.builtin()) {
      std::fprintf(stderr, "pretokenizer_fuzz: the built-in splitter is off (EMBER_SPLIT=pcre2?): nothing to compare\n");
      std::exit(2);
    }
    std::vector<std::string_view> got, want, stepped;
    p.builtin.split(text, got);
    p.pcre2.split_some(text, 0, want, static_cast<size_t>(-1), true);
    if (got != want) std::abort();
    size_t covered = 0;
    for (std::string_view piece : got) {
      if (piece.empty() || piece.data() != text.data() + covered) std::abort();
      covered += piece.size();
    }
    if (covered != text.size()) std::abort();
    for (size_t pos = 0; pos < text.size();) pos = p.builtin.split_some(text, pos, stepped, 1, false);
    if (stepped != got) std::abort();
  }
  return 0;
}
