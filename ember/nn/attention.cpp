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
  int64_t B = x.shape(0), T = x.shape(1);
  Tensor qkv = c_attn->forward(x);  // (B, T, (H + 2 Hkv) D)
  // Split the fused projection into heads: (B, T, h D) -> (B, T, h, D) -> (B, h, T, D).
  auto heads = [&](int64_t start_head, int64_t count) {
    Tensor part = narrow(qkv, 2, start_head * head_dim, count * head_dim);
    return transpose(reshape(part, {B, T, count, head_dim}), 1, 2);
  };
  Tensor q = heads(0, n_head);
  Tensor k = heads(n_head, n_kv_head);
  Tensor v = heads(n_head + n_kv_head, n_kv_head);
  Tensor y = scaled_dot_product_attention(q, k, v, /*causal=*/true);  // (B, H, T, D)
  // n_head * head_dim, not n_embd: under tensor parallelism a rank holds only its heads.
  y = reshape(transpose(y, 1, 2), {B, T, n_head * head_dim});
  return resid_dropout->forward(c_proj->forward(y));
}

std::string CausalSelfAttention::extra_repr() const {
  return str_cat("n_embd=", n_embd, ", n_head=", n_head, ", n_kv_head=", n_kv_head);
}

}  // namespace ember::nn
