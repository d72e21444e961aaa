// Generated token ids to streamed text: each token's bytes go through a
// Utf8Stream (so a character split across tokens is released whole) and then
// a StopMatcher (so a stop string is never shown, even in part). Special
// tokens (<|im_end|>, <|endoftext|>, ...) add no text: they are control
// tokens, and the engine's stop tokens among them end generation anyway.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ember/serve/stop_matcher.h"
#include "ember/serve/utf8_stream.h"
#include "ember/tokenizer/tokenizer.h"

namespace ember::serve {

class Detokenizer {
 public:
  // Keeps a reference to `tokenizer`, which must outlive the Detokenizer.
  Detokenizer(const Tokenizer& tokenizer, std::vector<std::string> stop_strings = {});

  // The text that one more generated token releases (possibly empty).
  std::string push(int64_t token);
  // The end of generation: what was held back (an incomplete character
  // becomes U+FFFD; a partial stop-string match is released).
  std::string finish();
  // True once a stop string appeared; the text after it is never returned.
  bool stopped() const { return stops_.stopped(); }

 private:
  const Tokenizer* tok_;
  Utf8Stream utf8_;
  StopMatcher stops_;
};

// The bytes of one token as text for display (OpenAI's logprobs "token"):
// a partial UTF-8 sequence shows as U+FFFD; special tokens show their name.
std::string token_text(const Tokenizer& tokenizer, int64_t token);

}  // namespace ember::serve
