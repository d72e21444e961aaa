// One generation in flight on the shared inference engine, seen from the
// thread that serves it (an HTTP handler, the terminal chat): submit, then
// pull text deltas as the engine's background thread produces tokens, and
// cancel at any time (a client that went away, a stop string, Ctrl-C).
//
// The engine calls back on its own thread; the callback only appends the
// event to a small inbox shared with this object, so the engine never waits
// for a slow client, and a Generation destroyed early (its client gone)
// leaves the engine nothing dangling: the inbox lives until both sides drop it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/infer/engine.h"
#include "ember/serve/detokenizer.h"

namespace ember::serve {

struct GenerationRequest {
  std::vector<int64_t> prompt;
  infer::SamplingParams sampling;
  int64_t max_tokens = 16;
  std::vector<int64_t> stop_tokens;       // e.g. <|im_end|>: end with "stop", add no text
  std::vector<std::string> stop_strings;  // end with "stop" when the text contains one
  uint64_t seed = 0;
  // Debug only (`ember serve --debug-token-delay-ms`): the engine thread
  // sleeps this long per token of this request, so tests and demos can watch
  // a stream and stop it. Slows every request sharing the engine.
  int64_t token_delay_ms = 0;
};

// The log-probability of one generated token (OpenAI's logprobs.content[i]).
struct TokenLogprob {
  std::string token;           // its text (see token_text)
  std::vector<uint8_t> bytes;  // its raw bytes
  double logprob = 0;
};

struct Delta {
  std::string text;                    // new text (valid UTF-8; may be empty)
  std::vector<TokenLogprob> logprobs;  // the tokens that arrived with it
  bool finished = false;
  std::string finish_reason;  // when finished: "stop", "length", "cancelled" or "error"
  std::string error;          // with "error"
};

class Generation {
 public:
  // Submits to `engine`; throws ember::Error when the engine refuses (invalid
  // request, or "engine at capacity"). `tokenizer` must outlive this object.
  Generation(infer::Engine& engine, const Tokenizer& tokenizer, GenerationRequest request);
  ~Generation();  // cancels an unfinished generation, freeing its slot at the next step
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Waits up to `wait` for something new: text, token logprobs, or the end.
  // nullopt when nothing came in time (the caller may check its client and
  // call again). After the finishing delta, returns a finished empty delta.
  std::optional<Delta> next(std::chrono::milliseconds wait);
  // Asks the engine to drop the request; next() then reports "cancelled".
  void cancel();

  bool finished() const { return finished_; }
  int64_t id() const { return id_; }
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t completion_tokens() const { return completion_tokens_; }
  // When the first token arrived (nullopt before).
  std::optional<std::chrono::steady_clock::time_point> first_token_time() const { return first_token_; }

 private:
  struct Inbox;
  infer::Engine* engine_;
  const Tokenizer* tok_;
  std::shared_ptr<Inbox> inbox_;
  Detokenizer detok_;
  std::vector<int64_t> stop_tokens_;
  int64_t id_ = 0, prompt_tokens_ = 0, completion_tokens_ = 0;
  bool finished_ = false;
  std::optional<std::chrono::steady_clock::time_point> first_token_;
};

}  // namespace ember::serve
