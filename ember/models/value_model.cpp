// ValueModel (see value_model.h).
#include "ember/models/value_model.h"

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/nn/init.h"
#include "ember/ops/ops.h"

namespace ember::models {

ValueModel::ValueModel(GPTConfig cfg, Generator* gen) : gpt_(std::make_shared<GPT>(std::move(cfg), gen)) {
  transformer = register_module("transformer", gpt_->transformer);
  score = register_module("score", std::make_shared<nn::Linear>(gpt_->config().n_embd, 1, true, gen));
  nn::init::zeros_(score->weight);
  nn::init::zeros_(score->bias);
}

Tensor ValueModel::values(const Tensor& idx) {
  Tensor h = gpt_->hidden_states(idx);          // [B, T, C]
  Tensor v = score->forward(h);                 // [B, T, 1]
  return reshape(v, {idx.shape(0), idx.shape(1)});
}

Tensor ValueModel::score_at(const Tensor& idx, const Tensor& last) {
  const char* op = "ValueModel";
  EMBER_CHECK(last.defined() && last.ndim() == 1 && last.dtype() == DType::i64, op,
              "score_at: `last` must be int64 [B]");
  EMBER_CHECK(idx.defined() && idx.ndim() == 2 && last.shape(0) == idx.shape(0), op, "score_at: ", last.shape(0),
              " indices for ", idx.defined() && idx.ndim() == 2 ? idx.shape(0) : -1, " rows");
  {
    NoGradGuard no_grad;
    const int64_t lo = min(last).item<int64_t>(), hi = max(last).item<int64_t>();
    EMBER_CHECK(lo >= 0 && hi < idx.shape(1), op, "score_at: last-token indices must be in [0, ", idx.shape(1),
                "), got [", lo, ", ", hi, "]");
  }
  Tensor v = values(idx);                                    // [B, T]
  return reshape(gather(v, 1, reshape(last, {last.shape(0), 1})), {last.shape(0)});
}

void ValueModel::load_trunk(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  TensorMap mine;
  const bool has_head = file.tensors.count("score.weight") > 0;
  for (auto& [name, t] : state_dict()) {
    const bool trunk = name.rfind("transformer.", 0) == 0;
    if (!trunk && !has_head) continue;
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) fail("ValueModel", path, " has no tensor \"", name, "\" (is it a GPT checkpoint?)");
    if (it->second.shape() != t.shape())
      fail("ValueModel", path, ": tensor \"", name, "\" has shape ", shape_str(it->second.shape()), ", the model expects ",
           shape_str(t.shape()));
    mine[name] = it->second;
  }
  load_state_dict(mine, /*strict=*/false);
}

}  // namespace ember::models
