// Choosing the next token from a row of logits: greedy, temperature, top-k and
// top-p (nucleus) sampling, reproducible from a seeded Generator.
//
// The order of the filters follows Hugging Face's and llama.cpp's defaults:
// temperature scales the logits, then top-k keeps the k largest, then top-p
// keeps the smallest set of most likely tokens whose probability reaches p.
// A temperature of 0 means greedy (argmax; ties go to the lowest id).
#pragma once

#include <cstdint>
#include <string>

#include "ember/core/random.h"

namespace ember::infer {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = no limit
  double top_p = 1.0;        // 1 = no limit
  void validate() const;     // error naming the field and value
};

// One token id from logits[0 .. vocab). Draws exactly one random number from
// `gen` unless greedy, so a seeded generator gives a reproducible sequence.
int64_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, Generator& gen);

}  // namespace ember::infer
