// Rank-based byte-pair merging of one pre-token piece, as tiktoken does it:
// start from the piece's single bytes and repeatedly merge the adjacent pair
// whose concatenation has the lowest rank (leftmost on ties) until no
// adjacent pair is a token.
#pragma once

#include <string_view>
#include <vector>

#include "ember/tokenizer/vocab.h"

namespace ember {

// Appends the tokens of `piece` (non-empty) to `out`. Short pieces use a
// linear scan per merge (fastest for the usual handful of bytes); long ones a
// min-heap over a linked list, O(n log n), so a megabyte with no split points
// (a long run of one letter, base64 blobs) cannot stall the encoder.
void bpe_merge_piece(const Vocab& vocab, std::string_view piece, std::vector<TokenId>& out);

// The two algorithms, exposed so tests can check that they agree.
void bpe_merge_piece_scan(const Vocab& vocab, std::string_view piece, std::vector<TokenId>& out);
void bpe_merge_piece_heap(const Vocab& vocab, std::string_view piece, std::vector<TokenId>& out);

}  // namespace ember
