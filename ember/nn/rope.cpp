// Rotary position embedding.
#include "ember/nn/rope.h"

#include <cmath>
#include <vector>

#include "ember/ops/elementwise.h"
#include "ember/ops/index_ops.h"
#include "ember/ops/shape_ops.h"

namespace ember::nn {

Tensor apply_rotary(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  EMBER_CHECK(x.ndim() >= 2, "apply_rotary", "expects x [..., T, D], got ", shape_str(x.shape()));
  const int64_t T = x.shape(-2), D = x.shape(-1), last = x.ndim() - 1;
  EMBER_CHECK(D % 2 == 0, "apply_rotary", "head dimension must be even, got ", D);
  EMBER_CHECK(cos.ndim() == 2 && cos.shape(0) == T && cos.shape(1) == D && sin.shape() == cos.shape(), "apply_rotary",
              "cos and sin must be [", T, ", ", D, "], got ", shape_str(cos.shape()), " and ", shape_str(sin.shape()));
  Tensor x1 = narrow(x, last, 0, D / 2);
  Tensor x2 = narrow(x, last, D / 2, D / 2);
  Tensor rotated = concat({neg(x2), x1}, last);
  return x * cos + rotated * sin;
}

RotaryEmbedding::RotaryEmbedding(int64_t head_dim_, int64_t max_positions_, double theta_)
    : head_dim(head_dim_), max_positions(max_positions_), theta(theta_) {
  EMBER_CHECK(head_dim > 0 && head_dim % 2 == 0, "RotaryEmbedding", "head_dim must be positive and even, got ",
              head_dim);
  EMBER_CHECK(max_positions > 0, "RotaryEmbedding", "max_positions must be positive, got ", max_positions);
  EMBER_CHECK(theta > 1.0, "RotaryEmbedding", "theta must be > 1, got ", theta);
  const int64_t half = head_dim / 2;
  std::vector<double> c(size_t(max_positions * head_dim)), s(c.size());
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      // inv_freq[i] = theta^(-2i/D), as Hugging Face computes it.
      double angle = double(p) * std::pow(theta, -double(2 * i) / double(head_dim));
      for (int64_t h : {i, i + half}) {
        c[size_t(p * head_dim + h)] = std::cos(angle);
        s[size_t(p * head_dim + h)] = std::sin(angle);
      }
    }
  }
  cos = register_buffer("cos", tensor(c, {max_positions, head_dim}), /*persistent=*/false);
  sin = register_buffer("sin", tensor(s, {max_positions, head_dim}), /*persistent=*/false);
}

Tensor RotaryEmbedding::forward(const Tensor& x, int64_t pos_offset) const {
  EMBER_CHECK(x.ndim() >= 2 && x.shape(-1) == head_dim, "RotaryEmbedding", "expects x [..., T, ", head_dim, "], got ",
              shape_str(x.shape()));
  const int64_t T = x.shape(-2);
  EMBER_CHECK(pos_offset >= 0 && pos_offset + T <= max_positions, "RotaryEmbedding", "positions ", pos_offset, "..",
              pos_offset + T - 1, " exceed the table of ", max_positions, " positions");
  return apply_rotary(x, narrow(cos, 0, pos_offset, T), narrow(sin, 0, pos_offset, T));
}

std::string RotaryEmbedding::extra_repr() const {
  return str_cat("head_dim=", head_dim, ", max_positions=", max_positions, ", theta=", theta);
}

}  // namespace ember::nn
