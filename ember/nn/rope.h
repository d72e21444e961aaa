// Rotary position embedding (RoPE, Su et al. 2021), in the convention of
// Llama and Hugging Face's `apply_rotary_pos_emb`: the head dimension D is split
// into halves [x1 | x2] and each pair (x1[i], x2[i]) is rotated by the angle
// pos * theta^(-2i/D):
//   rope(x) = x * cos + rotate_half(x) * sin,   rotate_half([x1 | x2]) = [-x2 | x1]
// with cos/sin tables of shape [positions, D] whose two halves repeat. (The
// original RoFormer / Meta checkpoints interleave pairs (x[2i], x[2i+1])
// instead; converting between the two permutes the rows of q and k weights.)
//
// Built from differentiable ember ops (narrow, neg, concat, mul, add), so it
// has gradients of any order and traces like any other composite. Because a
// rotation by pos*w followed by a dot product depends only on the difference of
// positions, q.k after RoPE depends on (pos_q - pos_k) only.
#pragma once

#include "ember/nn/module.h"

namespace ember::nn {

// x [..., T, D] with cos and sin [T, D] (broadcast over leading dims).
Tensor apply_rotary(const Tensor& x, const Tensor& cos, const Tensor& sin);

class RotaryEmbedding : public Module {
 public:
  // Tables for positions 0 .. max_positions-1 (computed in float64, stored as float32).
  RotaryEmbedding(int64_t head_dim, int64_t max_positions, double theta = 10000.0);
  // x [B, H, T, D] holding positions pos_offset .. pos_offset+T-1.
  Tensor forward(const Tensor& x, int64_t pos_offset = 0) const;
  std::string type_name() const override { return "RotaryEmbedding"; }
  std::string extra_repr() const override;

  int64_t head_dim, max_positions;
  double theta;
  Tensor cos, sin;  // [max_positions, head_dim], non-persistent buffers (follow to(device/dtype))
};

}  // namespace ember::nn
