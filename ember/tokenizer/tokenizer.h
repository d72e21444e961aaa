// ember's byte-level BPE tokenizer (GPT-2 / GPT-4 style, tiktoken-compatible).
//
// A Tokenizer is: a split pattern (regex pre-tokenization), a Vocab of
// mergeable tokens whose rank is both id and merge priority, and special
// tokens (e.g. <|endoftext|>) with ids of their own that merges never produce
// and that encode() recognises only when the caller allows them.
//
// Encoding a piece: a single byte or a piece that is itself a token maps
// straight to its rank (as in tiktoken); otherwise the piece is merged by
// rank (bpe.h), through a small per-thread cache of recent pieces. Because all
// 256 bytes are tokens, every byte string encodes and decode(encode(s)) == s.
//
// On disk, a tokenizer folder holds two files:
//   ranks.tiktoken    the mergeable tokens in tiktoken's format (base64, rank),
//                     so tiktoken itself can load an ember-trained vocabulary;
//   tokenizer.json    {"format": "ember-bpe", "version": 1, "name": "...",
//                      "pattern": "<split regex>", "ranks": "ranks.tiktoken",
//                      "special_tokens": {"<|endoftext|>": 8189, ...},
//                      "vocab_size": 8192}
// save() writes each file atomically, ranks first and tokenizer.json last, so
// a folder whose tokenizer.json exists is complete. load() checks that the
// two agree (vocab_size, no id used twice).
//
// All const methods are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/tokenizer/pretokenizer.h"
#include "ember/tokenizer/vocab.h"

namespace ember {

// Which special-token strings encode() turns into special ids. Strings not
// allowed are encoded as ordinary text (tiktoken's `disallowed_special=()`).
struct AllowedSpecial {
  bool all = false;
  std::set<std::string> names;
  static AllowedSpecial All() { return {true, {}}; }
  static AllowedSpecial None() { return {}; }
  bool allows(const std::string& token) const { return all || names.count(token) > 0; }
};

class Tokenizer {
 public:
  // Throws ember::Error when a special token's id collides with a rank or
  // another special token, or a special token is empty.
  Tokenizer(Vocab vocab, std::string pattern, std::map<std::string, TokenId> special_tokens, std::string name = "");

  // A `.tiktoken` rank file; the pattern and special tokens come from the
  // `encodings.json` in the same folder, entry named after the file's stem
  // (cl100k_base.tiktoken -> "cl100k_base").
  static Tokenizer from_tiktoken(const std::string& ranks_path);
  static Tokenizer from_tiktoken(const std::string& ranks_path, std::string pattern,
                                 std::map<std::string, TokenId> special_tokens, std::string name = "");

  // A tokenizer folder (see the top of this file).
  static Tokenizer load(const std::string& dir);
  void save(const std::string& dir) const;

  // Special-token strings are plain text here.
  std::vector<TokenId> encode_ordinary(std::string_view text) const;
  std::vector<TokenId> encode(std::string_view text, const AllowedSpecial& allowed) const;
  // Throws ember::Error naming the first id that is neither a rank nor a special token.
  std::string decode(std::span<const TokenId> ids) const;

  // Batches run one text per OpenMP thread (dynamic schedule).
  std::vector<std::vector<TokenId>> encode_batch(const std::vector<std::string>& texts,
                                                 const AllowedSpecial& allowed = AllowedSpecial::None()) const;
  std::vector<std::string> decode_batch(const std::vector<std::vector<TokenId>>& batch) const;

  // Bytes of one id (a rank or a special token).
  std::string_view token_bytes(TokenId id) const;
  bool is_special(TokenId id) const;
  // The id of a special token; throws when there is none with that name.
  TokenId special_id(const std::string& token) const;
  const std::map<std::string, TokenId>& special_tokens() const { return special_; }

  // One past the largest id (rank or special): the embedding table size.
  size_t vocab_size() const { return vocab_size_; }
  const Vocab& vocab() const { return vocab_; }
  const std::string& pattern() const { return pretokenizer_.pattern(); }
  const std::string& name() const { return name_; }

 private:
  void encode_text(std::string_view text, std::vector<TokenId>& out) const;
  void encode_piece(std::string_view piece, std::vector<TokenId>& out) const;

  Vocab vocab_;
  Pretokenizer pretokenizer_;
  std::map<std::string, TokenId> special_;
  std::map<TokenId, std::string> special_by_id_;
  std::string name_;
  size_t vocab_size_ = 0;
  uint64_t uid_ = 0;  // identifies this tokenizer to the per-thread piece cache
};

}  // namespace ember
