// Tokenizer: encode (pieces, whole-token shortcut, piece cache, specials), decode, batches.
#include "ember/tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>

#include "ember/core/error.h"
#include "ember/tokenizer/bpe.h"

namespace ember {

namespace {

std::atomic<uint64_t> g_next_uid{1};

// A direct-mapped per-thread cache of piece -> tokens for pieces that are not
// tokens themselves (rarer words, code identifiers). Bounded and allocation-
// free on the hot path; entries belong to one tokenizer (`owner`), and a
// thread that switches tokenizers simply starts over.
struct PieceCache {
  static constexpr size_t kEntries = 4096;
  static constexpr size_t kKeyMax = 24;
  static constexpr size_t kTokensMax = 12;
  struct Entry {
    uint64_t hash = 0;
    uint8_t key_len = 0;  // 0 = empty
    uint8_t n_tokens = 0;
    char key[kKeyMax];
    TokenId tokens[kTokensMax];
  };
  uint64_t owner = 0;
  std::vector<Entry> entries;

  void claim(uint64_t uid) {
    if (owner == uid) return;
    entries.assign(kEntries, Entry{});
    owner = uid;
  }
};

PieceCache& piece_cache(uint64_t uid) {
  thread_local PieceCache cache;
  cache.claim(uid);
  return cache;
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab, std::string pattern, std::map<std::string, TokenId> special_tokens,
                     std::string name)
    : vocab_(std::move(vocab)),
      pretokenizer_(std::move(pattern)),
      special_(std::move(special_tokens)),
      name_(std::move(name)),
      uid_(g_next_uid.fetch_add(1)) {
  vocab_size_ = vocab_.end_rank();
  for (const auto& [token, id] : special_) {
    EMBER_CHECK(!token.empty(), "tokenizer", "a special token is the empty string");
    EMBER_CHECK(!vocab_.contains(id), "tokenizer", "special token ", token, " has id ", id,
                ", which is already the rank of a mergeable token");
    auto [it, fresh] = special_by_id_.emplace(id, token);
    EMBER_CHECK(fresh, "tokenizer", "special tokens ", it->second, " and ", token, " share id ", id);
    vocab_size_ = std::max<size_t>(vocab_size_, size_t(id) + 1);
  }
}

void Tokenizer::encode_piece(std::string_view piece, std::vector<TokenId>& out) const {
  const size_t n = piece.size();
  if (n == 1) {
    out.push_back(vocab_.byte_token(static_cast<unsigned char>(piece[0])));
    return;
  }
  const uint64_t hash = hash_bytes(piece.data(), n);
  // tiktoken takes a piece that is a token as that token without merging; the
  // merge order could in principle reach a different split, so do the same.
  if (TokenId id = vocab_.find(piece, hash); id != kNoToken) {
    out.push_back(id);
    return;
  }
  PieceCache::Entry* entry = nullptr;
  if (n <= PieceCache::kKeyMax) {
    PieceCache& cache = piece_cache(uid_);
    entry = &cache.entries[hash & (PieceCache::kEntries - 1)];
    if (entry->hash == hash && entry->key_len == n && std::memcmp(entry->key, piece.data(), n) == 0) {
      out.insert(out.end(), entry->tokens, entry->tokens + entry->n_tokens);
      return;
    }
  }
  const size_t first = out.size();
  bpe_merge_piece(vocab_, piece, out);
  const size_t count = out.size() - first;
  if (entry && count <= PieceCache::kTokensMax) {
    entry->hash = hash;
    entry->key_len = static_cast<uint8_t>(n);
    entry->n_tokens = static_cast<uint8_t>(count);
    std::memcpy(entry->key, piece.data(), n);
    std::copy(out.begin() + first, out.end(), entry->tokens);
  }
}

void Tokenizer::encode_text(std::string_view text, std::vector<TokenId>& out) const {
  // Pieces are produced in bounded batches so that a huge text does not need
  // a piece list as large as itself.
  constexpr size_t kBatch = 4096;
  std::vector<std::string_view> pieces;
  pieces.reserve(kBatch + 2);
  const bool exact = pretokenizer_.needs_exact(text);
  size_t pos = 0;
  while (pos < text.size()) {
    pieces.clear();
    pos = pretokenizer_.split_some(text, pos, pieces, kBatch, exact);
    for (std::string_view piece : pieces) encode_piece(piece, out);
  }
}

std::vector<TokenId> Tokenizer::encode_ordinary(std::string_view text) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 4 + 16);
  encode_text(text, out);
  return out;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, const AllowedSpecial& allowed) const {
  struct Candidate {
    std::string_view token;
    TokenId id;
    size_t next;  // next occurrence at or after the scan position, or npos
  };
  std::vector<Candidate> candidates;
  for (const auto& [token, id] : special_) {
    if (allowed.allows(token)) candidates.push_back({token, id, text.find(token)});
  }
  std::vector<TokenId> out;
  out.reserve(text.size() / 4 + 16);
  size_t pos = 0;
  while (true) {
    // The earliest special token; the longest one when several start there.
    const Candidate* best = nullptr;
    for (Candidate& c : candidates) {
      if (c.next != std::string_view::npos && c.next < pos) c.next = text.find(c.token, pos);
      if (c.next == std::string_view::npos) continue;
      if (!best || c.next < best->next || (c.next == best->next && c.token.size() > best->token.size())) best = &c;
    }
    if (!best) break;
    encode_text(text.substr(pos, best->next - pos), out);
    out.push_back(best->id);
    pos = best->next + best->token.size();
  }
  encode_text(text.substr(pos), out);
  return out;
}

std::string_view Tokenizer::token_bytes(TokenId id) const {
  if (vocab_.contains(id)) return vocab_.bytes(id);
  auto it = special_by_id_.find(id);
  if (it == special_by_id_.end()) {
    fail("tokenizer", "id ", id, " is not in the vocabulary (", vocab_.size(), " ranks, ", special_.size(),
         " special tokens, vocab_size ", vocab_size_, ")");
  }
  return it->second;
}

bool Tokenizer::is_special(TokenId id) const { return special_by_id_.count(id) > 0; }

TokenId Tokenizer::special_id(const std::string& token) const {
  auto it = special_.find(token);
  if (it == special_.end()) fail("tokenizer", "no special token '", token, "' in tokenizer ", name_);
  return it->second;
}

std::string Tokenizer::decode(std::span<const TokenId> ids) const {
  size_t total = 0;
  for (TokenId id : ids) total += token_bytes(id).size();
  std::string out;
  out.reserve(total);
  for (TokenId id : ids) out += vocab_.contains(id) ? vocab_.bytes(id) : token_bytes(id);
  return out;
}

namespace {

// Runs fn(i) for i in [0, n) on OpenMP threads; the first exception is
// rethrown on the caller's thread (exceptions must not leave a parallel region).
template <typename Fn>
void parallel_items(size_t n, Fn&& fn) {
  std::exception_ptr error;
  std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      fn(static_cast<size_t>(i));
    } catch (...) {
#pragma omp critical(ember_tokenizer_error)
      if (!error) error = std::current_exception();
      failed = true;
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

std::vector<std::vector<TokenId>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                          const AllowedSpecial& allowed) const {
  std::vector<std::vector<TokenId>> out(texts.size());
  const bool plain = !allowed.all && allowed.names.empty();
  parallel_items(texts.size(), [&](size_t i) { out[i] = plain ? encode_ordinary(texts[i]) : encode(texts[i], allowed); });
  return out;
}

std::vector<std::string> Tokenizer::decode_batch(const std::vector<std::vector<TokenId>>& batch) const {
  std::vector<std::string> out(batch.size());
  parallel_items(batch.size(), [&](size_t i) { out[i] = decode(batch[i]); });
  return out;
}

}  // namespace ember
