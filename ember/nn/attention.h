// Causal multi-head self-attention with grouped-query support (n_kv_head
// divides n_head), GPT-2's layout: one fused c_attn projection for q, k and v,
// attention on it (fused_qkv_attention: the fused scaled dot-product attention
// kernels reading the heads where they lie), and an output projection c_proj.
#pragma once

#include <memory>

#include "ember/core/random.h"
#include "ember/nn/dropout.h"
#include "ember/nn/linear.h"

namespace ember::nn {

class CausalSelfAttention : public UnaryModule {
 public:
  // n_kv_head = 0 means n_head (plain multi-head attention). dropout is applied
  // to the output projection (residual dropout); the fused attention op has no
  // dropout on the attention weights.
  CausalSelfAttention(int64_t n_embd, int64_t n_head, int64_t n_kv_head = 0, bool bias = true, double dropout = 0.0,
                      Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;  // [B, T, n_embd] -> [B, T, n_embd]
  std::string type_name() const override { return "CausalSelfAttention"; }
  std::string extra_repr() const override;

  int64_t n_embd, n_head, n_kv_head, head_dim;
  std::shared_ptr<Linear> c_attn;  // n_embd -> (n_head + 2 * n_kv_head) * head_dim, rows ordered q, k, v
  std::shared_ptr<Linear> c_proj;  // n_embd -> n_embd
  std::shared_ptr<Dropout> resid_dropout;
};

}  // namespace ember::nn
