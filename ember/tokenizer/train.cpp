// BPE training: parallel chunk counting, then heap + occurrence-index merging.
#include "ember/tokenizer/train.h"

#include <algorithm>
#include <queue>
#include <unordered_map>

#include <omp.h>

#include "ember/core/error.h"

namespace ember {

std::vector<std::string> default_special_tokens() { return {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}; }

namespace {

struct ViewHash {
  size_t operator()(std::string_view s) const { return hash_bytes(s.data(), s.size()); }
};
using ChunkCounts = std::unordered_map<std::string_view, uint64_t, ViewHash>;

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Cuts special tokens out of the texts and splits long stretches into about
// kSegmentBytes pieces so that counting parallelises within one big file.
// Cuts go right after a '\n' followed by a non-space ASCII byte: none of the
// GPT-2/cl100k/o200k pattern items can match across such a point, so the
// chunks are the same as pre-tokenizing the uncut text.
std::vector<std::string_view> training_segments(const std::vector<std::string>& texts,
                                                const std::vector<std::string>& specials) {
  constexpr size_t kSegmentBytes = 1 << 20;
  std::vector<std::string_view> segments;
  auto add = [&](std::string_view s) {
    while (s.size() > kSegmentBytes) {
      size_t cut = std::string_view::npos;
      for (size_t i = s.find('\n', kSegmentBytes); i != std::string_view::npos && i + 1 < s.size();
           i = s.find('\n', i + 1)) {
        const unsigned char next = static_cast<unsigned char>(s[i + 1]);
        if (next < 0x80 && !is_ascii_space(static_cast<char>(next))) {
          cut = i + 1;
          break;
        }
      }
      if (cut == std::string_view::npos) break;
      segments.push_back(s.substr(0, cut));
      s.remove_prefix(cut);
    }
    if (!s.empty()) segments.push_back(s);
  };
  for (const std::string& text : texts) {
    std::string_view rest(text);
    while (true) {
      size_t at = std::string_view::npos, len = 0;
      for (const std::string& sp : specials) {
        size_t p = rest.find(sp);
        if (p < at || (p == at && p != std::string_view::npos && sp.size() > len)) {
          at = p;
          len = sp.size();
        }
      }
      if (at == std::string_view::npos) break;
      add(rest.substr(0, at));
      rest.remove_prefix(at + len);
    }
    add(rest);
  }
  return segments;
}

// Distinct pre-token chunks with their counts, counted per thread and summed
// (sums do not depend on the schedule, so the result is deterministic).
ChunkCounts count_chunks(const std::vector<std::string_view>& segments, const Pretokenizer& pre) {
  std::vector<ChunkCounts> partial(static_cast<size_t>(omp_get_max_threads()));
#pragma omp parallel
  {
    ChunkCounts& mine = partial[static_cast<size_t>(omp_get_thread_num())];
    std::vector<std::string_view> pieces;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < static_cast<int64_t>(segments.size()); ++i) {
      pieces.clear();
      pre.split(segments[static_cast<size_t>(i)], pieces);
      for (std::string_view p : pieces) ++mine[p];
    }
  }
  ChunkCounts total = std::move(partial[0]);
  for (size_t t = 1; t < partial.size(); ++t)
    for (const auto& [chunk, n] : partial[t]) total[chunk] += n;
  return total;
}

// The merge state: every distinct chunk ("word") as a run of token ids in one
// flat array, the count of every adjacent pair, and which words hold it.
class Merger {
 public:
  Merger(const std::vector<std::pair<std::string_view, uint64_t>>& words, std::vector<std::string>& token_bytes)
      : bytes_(token_bytes) {
    for (const auto& b : bytes_) bytes_index_.emplace(b, static_cast<TokenId>(&b - bytes_.data()));
    for (const auto& [chunk, count] : words) {
      if (chunk.size() < 2) continue;  // a single byte never takes part in a merge
      const uint32_t w = static_cast<uint32_t>(word_off_.size());
      word_off_.push_back(tokens_.size());
      word_len_.push_back(static_cast<uint32_t>(chunk.size()));
      word_count_.push_back(static_cast<int64_t>(count));
      for (char c : chunk) tokens_.push_back(static_cast<unsigned char>(c));
      const TokenId* t = tokens_.data() + word_off_[w];
      for (size_t i = 0; i + 1 < chunk.size(); ++i) {
        uint32_t p = pair_id(t[i], t[i + 1]);
        pair_count_[p] += word_count_[w];
        if (pair_words_[p].empty() || pair_words_[p].back() != w) pair_words_[p].push_back(w);
      }
    }
    word_stamp_.assign(word_off_.size(), 0);
    for (uint32_t p = 0; p < pair_count_.size(); ++p) push(p);
  }

  // Performs the best merge; false when no pair occurs min_frequency times.
  bool merge_best(int64_t min_frequency) {
    Entry e;
    while (true) {
      if (heap_.empty()) return false;
      e = heap_.top();
      heap_.pop();
      if (pair_count_[e.pair] == e.count) break;  // otherwise stale
    }
    if (e.count < min_frequency || e.count <= 0) return false;
    ++merge_no_;
    const TokenId a = e.a, b = e.b;
    std::string merged = bytes_[a] + bytes_[b];
    auto [it, fresh] = bytes_index_.emplace(merged, static_cast<TokenId>(bytes_.size()));
    if (fresh) bytes_.push_back(std::move(merged));
    const TokenId id = it->second;
    touched_.clear();
    std::vector<uint32_t> holders = std::move(pair_words_[e.pair]);
    pair_words_[e.pair].clear();
    for (uint32_t w : holders) {
      if (word_stamp_[w] == merge_no_) continue;  // listed twice
      word_stamp_[w] = merge_no_;
      TokenId* t = tokens_.data() + word_off_[w];
      const uint32_t n = word_len_[w];
      const int64_t c = word_count_[w];
      bool present = false;
      for (uint32_t i = 0; i + 1 < n && !present; ++i) present = t[i] == a && t[i + 1] == b;
      if (!present) continue;  // stale listing: an earlier merge took the pair away
      for (uint32_t i = 0; i + 1 < n; ++i) add(t[i], t[i + 1], -c, w, false);
      uint32_t m = 0;
      for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && t[i] == a && t[i + 1] == b) {
          t[m++] = id;
          i += 2;
        } else {
          t[m++] = t[i++];
        }
      }
      word_len_[w] = m;
      // Pairs without the new token were in the word before, so the word is
      // already on their lists; only pairs with `id` need it added.
      for (uint32_t i = 0; i + 1 < m; ++i) add(t[i], t[i + 1], c, w, t[i] == id || t[i + 1] == id);
    }
    for (uint32_t p : touched_) {
      if (pair_count_[p] != pair_before_[p] && pair_count_[p] > 0) push(p);
    }
    return true;
  }

 private:
  struct Entry {
    int64_t count;
    TokenId a, b;
    uint32_t pair;
    // Max-heap order: larger count first, then the smaller (a, b).
    bool operator<(const Entry& o) const {
      if (count != o.count) return count < o.count;
      if (a != o.a) return a > o.a;
      return b > o.b;
    }
  };

  uint32_t pair_id(TokenId a, TokenId b) {
    const uint64_t key = (static_cast<uint64_t>(a) << 32) | b;
    auto [it, fresh] = pair_index_.emplace(key, static_cast<uint32_t>(pair_count_.size()));
    if (fresh) {
      pair_count_.push_back(0);
      pair_words_.emplace_back();
      pair_left_.push_back(a);
      pair_right_.push_back(b);
      pair_stamp_.push_back(0);
      pair_before_.push_back(0);
    }
    return it->second;
  }

  void add(TokenId x, TokenId y, int64_t delta, uint32_t w, bool list_word) {
    const uint32_t p = pair_id(x, y);
    if (pair_stamp_[p] != merge_no_) {
      pair_stamp_[p] = merge_no_;
      pair_before_[p] = pair_count_[p];
      touched_.push_back(p);
    }
    pair_count_[p] += delta;
    if (list_word && (pair_words_[p].empty() || pair_words_[p].back() != w)) pair_words_[p].push_back(w);
  }

  void push(uint32_t p) {
    if (pair_count_[p] > 0) heap_.push(Entry{pair_count_[p], pair_left_[p], pair_right_[p], p});
  }

  std::vector<std::string>& bytes_;
  std::unordered_map<std::string, TokenId> bytes_index_;
  std::vector<TokenId> tokens_;
  std::vector<uint64_t> word_off_;
  std::vector<uint32_t> word_len_;
  std::vector<int64_t> word_count_;
  std::vector<uint32_t> word_stamp_;
  std::unordered_map<uint64_t, uint32_t> pair_index_;
  std::vector<int64_t> pair_count_, pair_before_;
  std::vector<std::vector<uint32_t>> pair_words_;
  std::vector<TokenId> pair_left_, pair_right_;
  std::vector<uint32_t> pair_stamp_;
  std::vector<uint32_t> touched_;
  std::priority_queue<Entry> heap_;
  uint32_t merge_no_ = 0;
};

}  // namespace

Tokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& options, BpeTrainStats* stats) {
  const size_t n_special = options.special_tokens.size();
  EMBER_CHECK(options.vocab_size >= 256 + n_special, "tokenizer",
              "train: vocab_size ", options.vocab_size, " is below 256 byte tokens + ", n_special, " special tokens");
  for (const std::string& s : options.special_tokens)
    EMBER_CHECK(!s.empty(), "tokenizer", "train: a special token is the empty string");
  const std::string pattern = resolve_split_pattern(options.pattern);
  Pretokenizer pre(pattern);

  ChunkCounts counts = count_chunks(training_segments(texts, options.special_tokens), pre);
  std::vector<std::pair<std::string_view, uint64_t>> words(counts.begin(), counts.end());
  std::sort(words.begin(), words.end());  // a fixed order, for reproducible memory layout
  BpeTrainStats local;
  local.distinct_chunks = words.size();
  for (const auto& w : words) local.total_chunks += w.second;

  std::vector<std::string> token_bytes;
  token_bytes.reserve(options.vocab_size);
  for (int b = 0; b < 256; ++b) token_bytes.emplace_back(1, static_cast<char>(b));
  const size_t target = options.vocab_size - n_special;
  {
    Merger merger(words, token_bytes);
    const size_t wanted = target - 256;
    while (token_bytes.size() < target) {
      if (!merger.merge_best(static_cast<int64_t>(std::max<size_t>(options.min_frequency, 1)))) {
        local.stopped_early = true;
        break;
      }
      ++local.merges;
      if (options.on_merge) options.on_merge(token_bytes.size() - 256, wanted);
    }
  }

  std::vector<std::pair<std::string, TokenId>> ranks;
  ranks.reserve(token_bytes.size());
  for (size_t i = 0; i < token_bytes.size(); ++i) ranks.emplace_back(std::move(token_bytes[i]), static_cast<TokenId>(i));
  std::map<std::string, TokenId> special;
  TokenId next = static_cast<TokenId>(ranks.size());
  for (const std::string& s : options.special_tokens) {
    if (special.emplace(s, next).second) ++next;
  }
  if (stats) *stats = local;
  return Tokenizer(Vocab(ranks), pattern, std::move(special), options.name);
}

Tokenizer train_bpe(const std::vector<std::string>& texts, size_t vocab_size, const std::string& pattern) {
  BpeTrainOptions options;
  options.vocab_size = vocab_size;
  options.pattern = pattern;
  return train_bpe(texts, options);
}

}  // namespace ember
