// libFuzzer target for byte-level BPE encoding and decoding: with a small
// vocabulary trained once from a fixed text (GPT-2 and cl100k split patterns,
// the chat special tokens), ANY byte string (invalid UTF-8, NULs, special-token
// look-alikes) must
//   - encode to ids below vocab_size() and decode back to exactly its bytes,
//     both as ordinary text and with every special token allowed;
//   - merge to the same tokens with the linear-scan and the min-heap BPE
//     algorithms (bpe.h), which must agree on every piece;
// and nothing may crash or throw. Run by scripts/fuzz.sh with
// tests/fuzz/bpe_roundtrip.dict; the corpus tests/fuzz/corpus/bpe_roundtrip/
// is replayed by CTest (fuzz_target.h).
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ember/tokenizer/bpe.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/tokenizer/train.h"
#include "fuzz/fuzz_target.h"

namespace {

// Words, digits, punctuation, whitespace runs, multi-byte UTF-8 (Latin, Greek,
// CJK, emoji) and special-token text, so the vocabulary learns merges of each kind.
const char* const kTrainingText =
    "Once upon a time there was a little robot named Mia. Mia liked counting: 1, 2, 3, 42, 1000.\n"
    "The robot said \"Hello, world!\" and the world said hello back.   Then it rained.\n\n"
    "Café crème, naïve façade; Ελληνικά γράμματα; 日本語のテキスト; emoji 🙂🙂 and ✓ marks.\n"
    "def count(n):\n    return [i * i for i in range(n)]  # squares\n"
    "<|endoftext|> user assistant system <|im_start|>user\nHi<|im_end|>\n";

struct Vocabularies {
  std::vector<ember::Tokenizer> tokenizers;
  Vocabularies() {
    const std::vector<std::string> texts(8, kTrainingText);
    for (const char* pattern : {"gpt2", "cl100k"}) {
      ember::BpeTrainOptions options;
      options.vocab_size = 420;
      options.pattern = pattern;
      tokenizers.push_back(ember::train_bpe(texts, options));
    }
  }
};

const Vocabularies& vocabularies() {
  static const Vocabularies v;
  return v;
}

void check_round_trip(const ember::Tokenizer& tok, std::string_view text) {
  const std::vector<ember::TokenId> ordinary = tok.encode_ordinary(text);
  const std::vector<ember::TokenId> special = tok.encode(text, ember::AllowedSpecial::All());
  for (const auto* ids : {&ordinary, &special}) {
    for (ember::TokenId id : *ids)
      if (id >= tok.vocab_size()) std::abort();
    if (tok.decode(*ids) != text) std::abort();
  }
  // Special tokens are never produced as ordinary text.
  for (ember::TokenId id : ordinary)
    if (tok.is_special(id)) std::abort();
}

}  // namespace

EMBER_FUZZ_TARGET(bpe_roundtrip) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const ember::Tokenizer& tok : vocabularies().tokenizers) {
    check_round_trip(tok, text);
    // The whole input as one piece (no pre-tokenization): both merge
    // algorithms must give the same tokens, and those spell the input.
    if (!text.empty() && text.size() <= 4096) {
      std::vector<ember::TokenId> scan, heap;
      ember::bpe_merge_piece_scan(tok.vocab(), text, scan);
      ember::bpe_merge_piece_heap(tok.vocab(), text, heap);
      if (scan != heap) std::abort();
      if (tok.decode(scan) != text) std::abort();
    }
  }
  return 0;
}
