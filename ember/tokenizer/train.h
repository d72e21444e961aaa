// Training a byte-level BPE vocabulary from text.
//
// The corpus is pre-tokenized once (in parallel) into distinct chunks with
// their counts; merging then works on those chunks only. Each merge takes the
// most frequent adjacent pair from a max-heap of pair counts (stale entries
// are skipped lazily) and rewrites only the chunks that a pair -> chunk
// occurrence index says contain it, updating the counts of the pairs those
// chunks gain and lose. Nothing rescans the corpus per merge.
//
// Deterministic: ties between equally frequent pairs go to the smaller
// (left id, right id); counting is order-independent, so the result does not
// depend on the number of threads or the order of the input files.
//
// Ranks 0..255 are the single bytes (rank = byte value); merges get 256, 257,
// ... in the order they were learned, so rank-based encoding replays them.
// Special tokens take the ids right after the last merge and are cut out of
// the training text first, so merges never learn them. A merge whose bytes
// already exist as a token (reached by another split) reuses that token.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "ember/tokenizer/tokenizer.h"

namespace ember {

// <|endoftext|> and the chat-turn tokens the chat template uses.
std::vector<std::string> default_special_tokens();

struct BpeTrainOptions {
  size_t vocab_size = 8192;          // ranks + special tokens
  std::string pattern = "cl100k";    // a name resolve_split_pattern() knows, or a regex
  std::vector<std::string> special_tokens = default_special_tokens();
  size_t min_frequency = 2;          // stop when the best pair is rarer than this
  std::string name = "ember-bpe";
  // Called after each merge with (merges done, merges wanted); for progress bars.
  std::function<void(size_t, size_t)> on_merge;
};

struct BpeTrainStats {
  size_t distinct_chunks = 0;
  size_t total_chunks = 0;
  size_t merges = 0;
  bool stopped_early = false;  // ran out of pairs with min_frequency before vocab_size
};

Tokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& options,
                    BpeTrainStats* stats = nullptr);
Tokenizer train_bpe(const std::vector<std::string>& texts, size_t vocab_size, const std::string& pattern);

}  // namespace ember
