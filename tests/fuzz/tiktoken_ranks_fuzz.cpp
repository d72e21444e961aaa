// libFuzzer target for tiktoken rank files (`<base64 token> <rank>` lines,
// ember/tokenizer/tiktoken_file.h) and the vocabulary built from them: ANY
// bytes must either parse or throw ember::Error (never crash, hang or throw
// anything else). What parses must keep its promises:
//   - no token or rank is repeated and every rank is below 2^31;
//   - format_tiktoken_ranks() of the resulting Vocab parses back to the same
//     (token, rank) pairs (base64 round trip);
//   - a Tokenizer on that vocabulary encodes and decodes a fixed text and the
//     input itself back to the same bytes.
// Run by scripts/fuzz.sh with tests/fuzz/tiktoken_ranks.dict; the corpus
// tests/fuzz/corpus/tiktoken_ranks/ is replayed by CTest (fuzz_target.h).
#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/core/error.h"
#include "ember/tokenizer/pretokenizer.h"
#include "ember/tokenizer/tiktoken_file.h"
#include "ember/tokenizer/tokenizer.h"
#include "fuzz/fuzz_target.h"

namespace {

using Ranks = std::vector<std::pair<std::string, ember::TokenId>>;

void check_vocab(const Ranks& ranks, std::string_view input) {
  ember::Vocab vocab;
  try {
    vocab = ember::Vocab(ranks, "fuzz");
  } catch (const ember::Error&) {
    return;  // e.g. a missing single-byte token or a rank far past the others
  }
  Ranks sorted = ranks;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  if (vocab.entries() != sorted) std::abort();
  if (ember::parse_tiktoken_ranks(ember::format_tiktoken_ranks(vocab), "fuzz-formatted") != sorted) std::abort();

  const ember::TokenId endoftext = vocab.end_rank();
  const ember::Tokenizer tok(std::move(vocab), ember::kPatternCl100k, {{"<|endoftext|>", endoftext}});
  for (std::string_view text : {std::string_view("Hello, world! 123 café 🙂 <|endoftext|>"), input}) {
    if (tok.decode(tok.encode_ordinary(text)) != text) std::abort();
    if (tok.decode(tok.encode(text, ember::AllowedSpecial::All())) != text) std::abort();
  }
}

}  // namespace

EMBER_FUZZ_TARGET(tiktoken_ranks) {
  const std::string_view content(reinterpret_cast<const char*>(data), size);
  Ranks ranks;
  try {
    ranks = ember::parse_tiktoken_ranks(content, "fuzz.tiktoken");
  } catch (const ember::Error&) {
    return 0;  // rejecting bad input is the expected outcome
  }
  if (ranks.empty()) std::abort();  // "no tokens" is an error, not an empty vocabulary
  std::set<std::string> tokens;
  std::set<ember::TokenId> ids;
  for (const auto& [bytes, rank] : ranks) {
    if (bytes.empty() || rank >= (1u << 31)) std::abort();
    if (!tokens.insert(bytes).second || !ids.insert(rank).second) std::abort();
  }
  // Random rank files almost never hold all 256 single bytes; building the
  // vocabulary is still worth trying on the ones that do (seeds do).
  check_vocab(ranks, content);
  return 0;
}
