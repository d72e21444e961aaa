// Byte-pair merging of one piece: linear-scan and heap variants.
#include "ember/tokenizer/bpe.h"

#include <algorithm>
#include <queue>

namespace ember {

namespace {

// Pieces up to this many bytes use the scan variant (measured: the scan's
// tight loops beat the heap's bookkeeping well past typical word lengths).
constexpr size_t kScanMaxBytes = 48;

}  // namespace

void bpe_merge_piece_scan(const Vocab& vocab, std::string_view piece, std::vector<TokenId>& out) {
  const size_t n = piece.size();
  // tok[i] is part i; rank[i] the rank of merging parts i and i+1 (kNoToken,
  // the largest value, when they do not merge), so the minimum is the next merge.
  TokenId stack_tok[kScanMaxBytes], stack_rank[kScanMaxBytes];
  std::vector<TokenId> heap_tok, heap_rank;
  TokenId* tok = stack_tok;
  TokenId* rank = stack_rank;
  if (n > kScanMaxBytes) {
    heap_tok.resize(n);
    heap_rank.resize(n);
    tok = heap_tok.data();
    rank = heap_rank.data();
  }
  for (size_t i = 0; i < n; ++i) tok[i] = vocab.byte_token(static_cast<unsigned char>(piece[i]));
  for (size_t i = 0; i + 1 < n; ++i) rank[i] = vocab.merge(tok[i], tok[i + 1]);
  size_t m = n;
  while (m > 1) {
    size_t best = 0;
    TokenId best_rank = rank[0];
    for (size_t i = 1; i + 1 < m; ++i) {
      if (rank[i] < best_rank) {
        best_rank = rank[i];
        best = i;
      }
    }
    if (best_rank == kNoToken) break;
    tok[best] = best_rank;
    // Drop part best+1; rank[best+1..] shift with it.
    for (size_t i = best + 1; i + 1 < m; ++i) {
      tok[i] = tok[i + 1];
      rank[i] = rank[i + 1];
    }
    --m;
    if (best + 1 < m) rank[best] = vocab.merge(tok[best], tok[best + 1]);
    if (best > 0) rank[best - 1] = vocab.merge(tok[best - 1], tok[best]);
  }
  out.insert(out.end(), tok, tok + m);
}

void bpe_merge_piece_heap(const Vocab& vocab, std::string_view piece, std::vector<TokenId>& out) {
  const size_t n = piece.size();
  if (n == 0) return;
  struct Part {
    TokenId tok;
    uint32_t prev, next;  // neighbours by index; kNone at the ends
    uint32_t version;     // bumped whenever tok changes or the part dies
    bool alive;
  };
  constexpr uint32_t kNone = 0xFFFFFFFFu;
  std::vector<Part> parts(n);
  for (size_t i = 0; i < n; ++i) {
    parts[i] = Part{vocab.byte_token(static_cast<unsigned char>(piece[i])), i == 0 ? kNone : uint32_t(i - 1),
                    i + 1 == n ? kNone : uint32_t(i + 1), 0, true};
  }
  // A candidate merge of part `left` with its right neighbour, valid while
  // both parts keep the versions it saw. Parts keep their starting byte as
  // their index, so (rank, left) orders exactly like tiktoken's leftmost-
  // lowest-rank scan.
  struct Candidate {
    TokenId rank;
    uint32_t left;
    uint32_t left_version, right_version;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](uint32_t left) {
    if (left == kNone || parts[left].next == kNone) return;
    const Part& l = parts[left];
    const Part& r = parts[l.next];
    TokenId merged = vocab.merge(l.tok, r.tok);
    if (merged != kNoToken) heap.push(Candidate{merged, left, l.version, r.version});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<uint32_t>(i));
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    Part& l = parts[c.left];
    if (!l.alive || l.version != c.left_version || l.next == kNone) continue;
    Part& r = parts[l.next];
    if (r.version != c.right_version) continue;
    l.tok = c.rank;
    ++l.version;
    r.alive = false;
    ++r.version;
    l.next = r.next;
    if (r.next != kNone) parts[r.next].prev = c.left;
    push(l.prev);
    push(c.left);
  }
  for (uint32_t i = 0; i != kNone; i = parts[i].next) out.push_back(parts[i].tok);
}

void bpe_merge_piece(const Vocab& vocab, std::string_view piece, std::vector<TokenId>& out) {
  if (piece.size() <= kScanMaxBytes) {
    bpe_merge_piece_scan(vocab, piece, out);
  } else {
    bpe_merge_piece_heap(vocab, piece, out);
  }
}

}  // namespace ember
