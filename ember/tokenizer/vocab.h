// The mergeable-token table of a byte-level BPE tokenizer: token bytes <-> rank.
//
// A rank is both the token id and the merge priority (lower merges first), as
// in tiktoken's `.tiktoken` files. Two lookups sit on the encoder's hot path
// and are kept inline here:
//   find(bytes)   the rank of a byte string (whole-piece shortcut),
//   merge(a, b)   the rank of bytes(a) + bytes(b), or kNoToken.
// merge() answers from a table of every (left, right) split of every token
// whose halves are both tokens, built once at construction. Encoding then
// merges token ids, never rehashing byte strings, and gives exactly tiktoken's
// result because tiktoken's parts are always tokens too.
//
// Every single byte must be a token (byte fallback): that is what makes any
// byte string encodable, and construction refuses a table without it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ember {

using TokenId = uint32_t;
inline constexpr TokenId kNoToken = 0xFFFFFFFFu;

// A fast 64-bit hash for short byte strings (tokens, pre-token pieces).
inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * 0x94D049BB133111EBull;
    h ^= h >> 32;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

class Vocab {
 public:
  Vocab() = default;
  // `tokens` holds (bytes, rank) pairs in any order. Throws ember::Error
  // ("[where] ...") on an empty token, a repeated token or rank, an absurdly
  // large rank, or a missing single-byte token.
  Vocab(const std::vector<std::pair<std::string, TokenId>>& tokens, const std::string& where = "tokenizer");

  TokenId find(std::string_view bytes) const { return find(bytes, hash_bytes(bytes.data(), bytes.size())); }
  TokenId find(std::string_view bytes, uint64_t hash) const {
    if (slots_.empty()) return kNoToken;
    const uint64_t head = head_bytes(bytes);
    const size_t n = bytes.size();
    for (size_t i = hash & slot_mask_;; i = (i + 1) & slot_mask_) {
      const Slot& s = slots_[i];
      if (s.id == kNoToken) return kNoToken;
      if (s.len == n && s.head == head) {
        if (n <= 8) return s.id;  // the slot holds every byte: no second memory access
        if (std::memcmp(arena_.data() + spans_[s.id].off + 8, bytes.data() + 8, n - 8) == 0) return s.id;
      }
    }
  }

  TokenId merge(TokenId a, TokenId b) const {
    if (pair_keys_.empty()) return kNoToken;
    const uint64_t key = (static_cast<uint64_t>(a) << 32) | b;
    for (size_t i = pair_slot(key);; i = (i + 1) & pair_mask_) {
      if (pair_keys_[i] == key) return pair_values_[i];
      if (pair_keys_[i] == kEmptyPair) return kNoToken;
    }
  }

  TokenId byte_token(unsigned char b) const { return byte_tokens_[b]; }

  bool contains(TokenId id) const { return id < spans_.size() && spans_[id].len != 0; }
  // The bytes of a mergeable token; the caller checks contains() first.
  std::string_view bytes(TokenId id) const { return {arena_.data() + spans_[id].off, spans_[id].len}; }

  size_t size() const { return count_; }                 // number of tokens
  TokenId end_rank() const { return static_cast<TokenId>(spans_.size()); }  // max rank + 1
  size_t merge_pairs() const { return pair_count_; }

  // (bytes, rank) for every token, ordered by rank.
  std::vector<std::pair<std::string, TokenId>> entries() const;

 private:
  static constexpr uint64_t kEmptyPair = ~0ull;
  struct Span {
    uint32_t off = 0;
    uint32_t len = 0;  // 0 = no token has this rank
  };
  // A token's slot holds its length and first 8 bytes, so that looking up a
  // piece of up to 8 bytes (most of them) touches one cache line of a table
  // that, for a 200,000-token vocabulary, is far larger than the L2 cache:
  // reading the span and then the arena cost two more misses per piece, most
  // of o200k's lookup time (perf, session 18).
  struct Slot {
    TokenId id = kNoToken;
    uint32_t len = 0;   // token length
    uint64_t head = 0;  // head_bytes() of the token
  };
  // The first min(8, size) bytes, zero-padded, as one word.
  static uint64_t head_bytes(std::string_view b) {
    uint64_t v = 0;
    if (!b.empty()) std::memcpy(&v, b.data(), b.size() < 8 ? b.size() : 8);  // an empty view may hold null
    return v;
  }
  size_t pair_slot(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> pair_shift_; }
  void build_pairs();

  std::string arena_;
  std::vector<Span> spans_;
  std::vector<Slot> slots_;
  size_t slot_mask_ = 0;
  std::vector<uint64_t> pair_keys_;
  std::vector<TokenId> pair_values_;
  size_t pair_mask_ = 0;
  int pair_shift_ = 64;
  size_t pair_count_ = 0;
  size_t count_ = 0;
  TokenId byte_tokens_[256] = {};
};

}  // namespace ember
