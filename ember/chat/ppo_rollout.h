// One PPO iteration's experience (chat/ppo.h), and how data-parallel ranks
// (train/data_parallel_run.h) pool theirs: each rank samples, scores and
// evaluates (old, reference and value forwards) its share of the rollouts,
// then gather_rollout() gives every rank the whole batch, so the advantages,
// their whitening, the KL statistics and the minibatch order are computed from
// the global batch exactly as one process computes them.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ember/core/tensor.h"
#include "ember/train/data_parallel_run.h"

namespace ember::chat {

// Per-token tensors are [B, Tr] float32 indexed by response token (ppo_math.h's layout).
struct Rollout {
  std::vector<size_t> prompt_index;               // into the prompts file
  std::vector<std::vector<int64_t>> prompt_ids;   // as generated from (possibly cut from the left)
  std::vector<std::vector<int64_t>> response_ids; // generated, with <|im_end|> when the reply stopped
  std::vector<float> engine_logprobs;             // flat, per generated token (diagnostic)
  std::vector<double> raw_reward, score;
  int64_t Tr = 1;
  Tensor tokens, mask, old_logp, ref_logp, values, kl, rewards, advantages, returns;
};

// Sets ro.Tr (the longest response, at least 1), ro.tokens (int64, 0 on
// padding) and ro.mask (1 on real tokens) from ro.response_ids.
void set_response_tensors(Rollout& ro);

// Under data parallel: replaces this rank's share of the rollouts (prompt
// indices, responses, raw rewards, old/reference log-probs and values) with
// every rank's, in rank order, which is the global batch's order. The prompts'
// ids are rebuilt from their indices with prompt_ids(index). Collective; every
// rank must hold the same number of rollouts. engine_logprobs stays this rank's.
void gather_rollout(Rollout& ro, const train::DataParallelRun& dp,
                    const std::function<std::vector<int64_t>(size_t)>& prompt_ids);

}  // namespace ember::chat
