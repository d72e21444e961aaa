// Generating assistant replies to many conversations at once through the
// serving engine (infer/engine: KV cache, continuous batching), for every
// stage that needs them: evaluation, PPO rollouts, the report card.
//
// Each conversation gets its own request with seed `seed + index`, and the
// engine's batched decoding equals decoding each sequence alone, so the
// replies do not depend on how many run together (`slots`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/chat/template.h"
#include "ember/infer/engine.h"
#include "ember/models/gpt.h"

namespace ember::chat {

struct ReplyOptions {
  int64_t max_new_tokens = 48;
  infer::SamplingParams sampling = greedy();
  uint64_t seed = 0;
  int64_t slots = 16;  // sequences decoded together
  static infer::SamplingParams greedy() {
    infer::SamplingParams p;
    p.temperature = 0;
    return p;
  }
};

struct Reply {
  std::vector<int64_t> prompt;     // the rendered prompt (left-truncated to fit the context)
  std::vector<int64_t> ids;        // generated tokens, the closing <|im_end|> included when produced
  std::vector<float> logprobs;     // log-probability of each generated token (raw logits)
  std::string text;                // the reply's text, without <|im_end|>; valid UTF-8 (a cut character is U+FFFD)
  infer::FinishReason finish = infer::FinishReason::none;  // stop (<|im_end|>) or length
};

// Replies to each conversation (whose last message must be the user's). The
// model must be float32 on the CPU and is only read.
std::vector<Reply> generate_replies(const models::GPT& model, const ChatTemplate& tmpl,
                                    const std::vector<Conversation>& conversations, const ReplyOptions& options);
// The same with the runner's weights (float32 or quantized, infer/runner_weights.h).
std::vector<Reply> generate_replies(std::shared_ptr<const infer::RunnerWeights> weights, const ChatTemplate& tmpl,
                                    const std::vector<Conversation>& conversations, const ReplyOptions& options);

}  // namespace ember::chat
