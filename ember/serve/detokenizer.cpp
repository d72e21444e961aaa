// Incremental detokenization with stop strings (see detokenizer.h).
#include "ember/serve/detokenizer.h"

namespace ember::serve {

Detokenizer::Detokenizer(const Tokenizer& tokenizer, std::vector<std::string> stop_strings)
    : tok_(&tokenizer), stops_(std::move(stop_strings)) {}

std::string Detokenizer::push(int64_t token) {
  // Ids past the tokenizer (a model whose vocab_size is padded beyond it, as
  // nanoGPT pads 50257 to 50304) have no text: they add nothing, and must never
  // throw on the engine's stepping thread.
  if (stops_.stopped() || token < 0 || token >= int64_t(tok_->vocab_size()) || tok_->is_special(TokenId(token)))
    return {};
  return stops_.push(utf8_.push(tok_->token_bytes(TokenId(token))));
}

std::string Detokenizer::finish() {
  if (stops_.stopped()) return {};
  std::string out = stops_.push(utf8_.finish());
  return out + stops_.finish();
}

std::string token_text(const Tokenizer& tokenizer, int64_t token) {
  if (token < 0 || token >= int64_t(tokenizer.vocab_size())) return {};
  Utf8Stream s;
  std::string out = s.push(tokenizer.token_bytes(TokenId(token)));
  return out + s.finish();
}

}  // namespace ember::serve
