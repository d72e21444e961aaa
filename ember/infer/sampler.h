// Choosing the next token from a row of logits: greedy, temperature, top-k,
// top-p (nucleus), min-p, and repetition / presence / frequency penalties,
// reproducible from a seeded Generator, with the log-probability of the choice.
//
// Order of the steps (Hugging Face's, which llama.cpp's default chain matches
// up to where temperature sits):
//   1. penalties adjust the raw logits (need a TokenHistory):
//      - repetition_penalty r (CTRL, Keskar et al. 2019; HF and llama.cpp
//        `repeat_penalty`): every token seen in the prompt or the output so far
//        has its logit divided by r when positive, multiplied by r when negative.
//        1 = off; > 1 discourages repeats.
//      - presence_penalty a and frequency_penalty b (OpenAI's definition):
//        logit[j] -= a * (count[j] > 0) + b * count[j], where count[j] is how
//        often j appears in the output generated so far (not the prompt, as in
//        OpenAI and vLLM). 0 = off; in [-2, 2] as OpenAI allows.
//   2. temperature scales the logits; 0 means greedy (argmax of the penalised
//      logits; ties go to the lowest id) and skips the filters below.
//   3. top-k keeps the k largest, then top-p keeps the smallest set of most
//      likely tokens whose probability reaches p, then min-p keeps those whose
//      probability is at least min_p times the most likely one's.
// The logprob reported for the chosen token is log softmax of the raw logits
// (before penalties, temperature and filters), what OpenAI's `logprobs` and
// vLLM report: the model's own belief in the token.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "ember/core/random.h"

namespace ember::infer {

struct SamplingParams {
  double temperature = 1.0;         // 0 = greedy
  int64_t top_k = 0;                // 0 = no limit
  double top_p = 1.0;               // 1 = no limit
  double min_p = 0.0;               // 0 = off; in [0, 1]
  double repetition_penalty = 1.0;  // 1 = off; > 0
  double presence_penalty = 0.0;    // 0 = off; in [-2, 2]
  double frequency_penalty = 0.0;   // 0 = off; in [-2, 2]
  void validate() const;            // error naming the field and value
  bool has_penalties() const {
    return repetition_penalty != 1.0 || presence_penalty != 0.0 || frequency_penalty != 0.0;
  }
};

// What the penalties look at: the prompt's distinct tokens and the counts of
// generated ones.
class TokenHistory {
 public:
  void add_prompt(const std::vector<int64_t>& tokens);
  void add_generated(int64_t token);
  void clear();
  bool seen(int64_t token) const { return prompt_.count(token) || generated_.count(token); }
  int64_t generated_count(int64_t token) const;
  const std::unordered_map<int64_t, int64_t>& generated() const { return generated_; }
  const std::unordered_map<int64_t, int64_t>& prompt() const { return prompt_; }

 private:
  std::unordered_map<int64_t, int64_t> prompt_, generated_;
};

struct Sampled {
  int64_t token = 0;
  float logprob = 0;  // log softmax of the raw logits at `token`
};

// One token id from logits[0 .. vocab); ids past `vocab` are never read, so a
// caller masks a padded tail of the row (ids the tokenizer lacks) by passing
// the tokenizer's size, which equals setting those logits to -inf (the
// logprob is normalised over [0, vocab) too). Draws exactly one random number from
// `gen` unless greedy, so a seeded generator gives a reproducible sequence.
// `history` may be null when no penalty is set.
Sampled sample(const float* logits, int64_t vocab, const SamplingParams& params, Generator& gen,
               const TokenHistory* history = nullptr);
// The token only, without penalties (the original interface).
int64_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, Generator& gen);

}  // namespace ember::infer
