// Autoregressive text continuation with a GPT, one sequence at a time.
//
// This is the simple reference path (each new token runs the model over the
// whole window, no KV cache); the serving engine (infer/engine) is the fast
// one and is checked against this.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ember/core/random.h"
#include "ember/infer/sampler.h"
#include "ember/models/gpt.h"

namespace ember::infer {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  SamplingParams sampling;
  std::vector<int64_t> stop_tokens;  // generation ends after producing one of these
};

// Returns the new tokens only. `on_token` (optional) sees each token as it is
// chosen and may return false to stop early. The model runs in eval mode
// without recording gradients; its training flag is restored afterwards.
std::vector<int64_t> generate(models::GPT& model, const std::vector<int64_t>& prompt, const GenerateOptions& options,
                              Generator& gen, const std::function<bool(int64_t)>& on_token = {});

}  // namespace ember::infer
