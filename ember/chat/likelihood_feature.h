// The reward model's likelihood feature (chat/reward.h): the lowest
// log-probability a frozen language model gives any token of the reply,
// added with a fitted weight to the scalar head's score,
//
//   reward(prompt, reply) = head(prompt + reply) + weight * min_t log p_LM(reply_t | prompt, reply_<t).
//
// Why: the reward model's trunk starts from the SFT model, and that model's
// own likelihood already tells a right fact from a wrong one far better than
// the head learns to (measured at seed 1: 94.9% against 60.5% of the held-out
// "ideal > wrong fact" pairs), while the head is better at what likelihood
// misses (rude, rambling, ignoring the format). The language model is the
// reward model's initialisation, frozen, so the feature is what the SFT model
// believes; the weight is one number fitted on training lists after the head
// is trained (fit_likelihood_weight), never on held-out ones.
//
// The lowest token, not the sum or the mean over the reply's tokens
// (<|im_end|> included): a wrong fact is one surprising token in an otherwise
// likely reply, which a mean dilutes, and a sum favours short replies whatever
// they say. Measured on the default run's held-out pairs, added to the head's
// score with the weight fitted on training lists: seed 1 87.8% (head alone)
// -> 90.5% (mean) / 91.3% (lowest); seed 3 87.9% -> 89.9% / 90.7%; the sum
// lowers it (86.3%). docs/ALIGNMENT.md has the table.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/chat/preference_batch.h"
#include "ember/models/gpt.h"

namespace ember::chat {

struct LikelihoodFeature {
  std::shared_ptr<models::GPT> model;  // frozen, eval mode; null: the reward is the head alone
  double weight = 0;                   // raw reward per nat of the reply's lowest token log-probability
  bool active() const { return model != nullptr; }
};

// A frozen language model for the feature: `config`'s GPT with the weights of
// `model_path` (a model.safetensors), in eval mode.
std::shared_ptr<models::GPT> load_likelihood_model(const models::GPTConfig& config, const std::string& model_path);

// The lowest log-probability of any token of each row's reply,
// rows[i][starts[i]..end) (prompt + reply + <|im_end|>), `batch` rows per
// forward pass, no gradients. A row longer than the model's block_size keeps
// its last block_size tokens (its reply start moves with it; a reply longer
// than that is scored on the tokens that remain).
std::vector<double> reply_lowest_logps(models::GPT& lm, const std::vector<std::vector<int64_t>>& rows,
                                     const std::vector<int64_t>& starts, int64_t pad_id, int64_t batch = 16);

// The same for every response of `lists` (concatenated, best first), as the
// reward model's evaluation orders them.
std::vector<double> lists_lowest_logps(models::GPT& lm, const std::vector<RankedRows>& lists, int64_t pad_id,
                                     int64_t batch = 16);

// The weight w that maximises the pairwise accuracy (ties count 1/2) of
// head + w * feature over ranked lists whose responses are concatenated in
// `head` and `feature` (list sizes `sizes`). w is searched on a geometric grid
// from 0.001 to 10 head standard deviations per nat (66 values), and 0; the smallest w of
// the best accuracy wins, so a feature that does not help gets weight 0.
double fit_likelihood_weight(const std::vector<double>& head, const std::vector<double>& feature,
                             const std::vector<int64_t>& sizes);

// The pairwise accuracy of `scores` over such lists (ties count 1/2).
double lists_pairwise_accuracy(const std::vector<double>& scores, const std::vector<int64_t>& sizes);

}  // namespace ember::chat
