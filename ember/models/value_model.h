// ValueModel: the GPT trunk with a scalar head instead of the language-model
// head. It is the reward model of the ChatGPT recipe (a score read at the last
// token of prompt + response) and the PPO critic (a value at every position).
//
// Parameter names: the trunk keeps GPT's "transformer.*" names, so a pretrain
// or SFT checkpoint's trunk loads straight in (load_trunk), and the head is
//   score.weight [1, C], score.bias [1]
// The head starts at zero (weight and bias), so a fresh reward model scores
// every sequence 0 and a fresh critic predicts 0: no random offset to unlearn.
#pragma once

#include <memory>
#include <string>

#include "ember/models/gpt.h"
#include "ember/nn/linear.h"

namespace ember::models {

class ValueModel : public nn::Module {
 public:
  explicit ValueModel(GPTConfig cfg, Generator* gen = nullptr);

  // idx int64 [B, T] -> one scalar per position, [B, T].
  Tensor values(const Tensor& idx);
  // idx [B, T] (rows right-padded) and last int64 [B], the index of each row's
  // final real token -> the score there, [B]. Errors when an index is outside [0, T).
  Tensor score_at(const Tensor& idx, const Tensor& last);

  // Loads the "transformer.*" tensors of a GPT state file (a pretrain, SFT or
  // value checkpoint's model.safetensors); the head is loaded too when the file
  // has "score.*" (a value checkpoint), else left as it is. Errors name the
  // file and the tensor that is missing or of the wrong shape.
  void load_trunk(const std::string& safetensors_path);

  const GPTConfig& config() const { return gpt_->config(); }
  std::string type_name() const override { return "ValueModel"; }

  std::shared_ptr<Transformer> transformer;
  std::shared_ptr<nn::Linear> score;

 private:
  std::shared_ptr<GPT> gpt_;  // owns the trunk; only its "transformer" is registered here
};

}  // namespace ember::models
