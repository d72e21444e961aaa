// Vocab: validation, the bytes -> rank hash table and the pair -> merged-rank table.
#include "ember/tokenizer/vocab.h"

#include <algorithm>
#include <bit>

#include <omp.h>

#include "ember/core/error.h"

namespace ember {

namespace {

std::string hex_byte(unsigned b) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

// Power of two with load factor <= 1/2, so that probe runs stay short.
size_t table_size(size_t n) { return std::bit_ceil(std::max<size_t>(2 * n, 16)); }

}  // namespace

Vocab::Vocab(const std::vector<std::pair<std::string, TokenId>>& tokens, const std::string& where) {
  TokenId max_rank = 0;
  size_t total_bytes = 0;
  for (const auto& [bytes, rank] : tokens) {
    max_rank = std::max(max_rank, rank);
    total_bytes += bytes.size();
  }
  // Ranks index a dense decode table; a stray huge rank would make it absurd.
  EMBER_CHECK(tokens.empty() || (max_rank < 4 * tokens.size() + 65536 && max_rank < (1u << 31)), where, "rank ",
              max_rank, " is too large for a table of ", tokens.size(), " tokens");
  EMBER_CHECK(total_bytes < (1ull << 32), where, "token bytes exceed 4 GiB");
  count_ = tokens.size();
  spans_.assign(tokens.empty() ? 0 : size_t(max_rank) + 1, Span{});
  arena_.reserve(total_bytes);
  slots_.assign(table_size(tokens.size()), Slot{});
  slot_mask_ = slots_.size() - 1;
  for (const auto& [bytes, rank] : tokens) {
    EMBER_CHECK(!bytes.empty(), where, "rank ", rank, " has an empty token");
    EMBER_CHECK(spans_[rank].len == 0, where, "rank ", rank, " is given twice");
    TokenId existing = find(bytes);
    EMBER_CHECK(existing == kNoToken, where, "the same token bytes have ranks ", existing, " and ", rank);
    spans_[rank] = Span{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(bytes.size())};
    arena_.append(bytes);
    const uint64_t h = hash_bytes(bytes.data(), bytes.size());
    size_t i = h & slot_mask_;
    while (slots_[i].id != kNoToken) i = (i + 1) & slot_mask_;
    slots_[i] = Slot{rank, static_cast<uint32_t>(bytes.size()), head_bytes(bytes)};
  }
  for (unsigned b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    byte_tokens_[b] = find(std::string_view(&c, 1));
    EMBER_CHECK(byte_tokens_[b] != kNoToken, where, "no token for the single byte ", hex_byte(b),
                ": byte-level BPE needs all 256 bytes as tokens");
  }
  build_pairs();
}

void Vocab::build_pairs() {
  // Collect first (so the table can be sized exactly), then insert. The
  // lookups dominate loading a big vocabulary, so they run in parallel; the
  // table itself does not depend on the order of insertion.
  const int64_t n = static_cast<int64_t>(spans_.size());
  const int threads = omp_get_max_threads();
  std::vector<std::vector<std::pair<uint64_t, TokenId>>> partial(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    auto& mine = partial[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const TokenId id = static_cast<TokenId>(i);
      const Span sp = spans_[id];
      if (sp.len < 2) continue;
      std::string_view t(arena_.data() + sp.off, sp.len);
      for (size_t k = 1; k < t.size(); ++k) {
        TokenId a = find(t.substr(0, k));
        if (a == kNoToken) continue;
        TokenId b = find(t.substr(k));
        if (b != kNoToken) mine.emplace_back((static_cast<uint64_t>(a) << 32) | b, id);
      }
    }
  }
  std::vector<std::pair<uint64_t, TokenId>> pairs;
  size_t total = 0;
  for (const auto& p : partial) total += p.size();
  pairs.reserve(total);
  for (const auto& p : partial) pairs.insert(pairs.end(), p.begin(), p.end());
  pair_count_ = pairs.size();
  const size_t size = table_size(pairs.size());
  pair_keys_.assign(size, kEmptyPair);
  pair_values_.assign(size, kNoToken);
  pair_mask_ = size - 1;
  pair_shift_ = 64 - std::countr_zero(size);
  for (const auto& [key, id] : pairs) {
    size_t i = pair_slot(key);
    while (pair_keys_[i] != kEmptyPair) i = (i + 1) & pair_mask_;
    pair_keys_[i] = key;
    pair_values_[i] = id;
  }
}

std::vector<std::pair<std::string, TokenId>> Vocab::entries() const {
  std::vector<std::pair<std::string, TokenId>> out;
  out.reserve(count_);
  for (TokenId id = 0; id < spans_.size(); ++id)
    if (spans_[id].len) out.emplace_back(std::string(bytes(id)), id);
  return out;
}

}  // namespace ember
