// Causal self-attention block.
#include "ember/nn/attention.h"

#include "ember/ops/nn_ops.h"
#include "ember/ops/shape_ops.h"

namespace ember::nn {

CausalSelfAttention::CausalSelfAttention(int64_t n_embd_, int64_t n_head_, int64_t n_kv_head_, bool bias,
                                         double dropout, Generator* gen)
    : n_embd(n_embd_), n_head(n_head_), n_kv_head(n_kv_head_ == 0 ? n_head_ : n_kv_head_) {
  const char* op = "CausalSelfAttention";
  EMBER_CHECK(n_embd > 0 && n_head > 0 && n_kv_head > 0, op, "sizes must be positive, got n_embd=", n_embd,
              " n_head=", n_head, " n_kv_head=", n_kv_head);
  EMBER_CHECK(n_embd % n_head == 0, op, "n_embd ", n_embd, " is not divisible by n_head ", n_head);
  EMBER_CHECK(n_head % n_kv_head == 0, op, "n_head ", n_head, " is not a multiple of n_kv_head ", n_kv_head);
  head_dim = n_embd / n_head;
  c_attn = register_module("c_attn", std::make_shared<Linear>(n_embd, (n_head + 2 * n_kv_head) * head_dim, bias, gen));
  c_proj = register_module("c_proj", std::make_shared<Linear>(n_embd, n_embd, bias, gen));
  resid_dropout = register_module("resid_dropout", std::make_shared<Dropout>(dropout));
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  EMBER_CHECK(x.ndim() == 3 && x.shape(2) == n_embd, "CausalSelfAttention", "expects input [B, T, ", n_embd,
              "], got ", shape_str(x.shape()));
  // (B, T, (H + 2 Hkv) D) -> (B, T, H D); n_head * head_dim wide, not n_embd:
  // under tensor parallelism a rank holds only its heads.
  Tensor y = fused_qkv_attention(c_attn->forward(x), n_head, n_kv_head, /*causal=*/true);
  return resid_dropout->forward(c_proj->forward(y));
}

std::string CausalSelfAttention::extra_repr() const {
  return str_cat("n_embd=", n_embd, ", n_head=", n_head, ", n_kv_head=", n_kv_head);
}

}  // namespace ember::nn
