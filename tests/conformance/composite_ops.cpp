// Composite conformance cases written with ember ops directly (not nn/ or
// optim/, so they check the ops those layers are built from): a pre-norm GPT
// block, and an AdamW trajectory on a quadratic loss. The PyTorch side of both
// is in torch_cases.py.
#include <cmath>
#include <cstring>

#include "ember/ember.h"
#include "tests/conformance/op_table.h"

namespace ember::conformance {

// x + proj(attn(ln1(x))), then + fc2(gelu_tanh(fc(ln2(.)))), as GPT-2.
// Inputs: x [B,T,C], ln1 w/b, qkv w [3C,C]/b, proj w/b, ln2 w/b, fc w [4C,C]/b, fc2 w [C,4C]/b.
std::vector<Tensor> gpt_block(const std::vector<Tensor>& in, const nlohmann::json& a) {
  const int64_t n_head = a.at("n_head").get<int64_t>();
  const double eps = a.at("eps").get<double>();
  const Tensor& x = in[0];
  const int64_t B = x.shape(0), T = x.shape(1), C = x.shape(2), D = C / n_head;

  Tensor qkv = linear(layer_norm(x, in[1], in[2], eps), in[3], in[4]);  // (B,T,3C)
  auto heads = [&](int64_t i) {                                           // (B,H,T,D)
    return transpose(reshape(slice(qkv, 2, i * C, (i + 1) * C), {B, T, n_head, D}), 1, 2);
  };
  Tensor y = scaled_dot_product_attention(heads(0), heads(1), heads(2), /*causal=*/true);  // (B,H,T,D)
  y = reshape(transpose(y, 1, 2), {B, T, C});
  Tensor x1 = x + linear(y, in[5], in[6]);
  Tensor h = gelu(linear(layer_norm(x1, in[7], in[8], eps), in[9], in[10]), /*tanh_approximation=*/true);
  return {x1 + linear(h, in[11], in[12])};
}

// torch.optim.AdamW's update, step by step, on loss = 0.5 * sum(a * (p - target)^2)
// with the gradient from ember's autograd. Returns the parameters after each step,
// stacked: [steps, ...p.shape].
std::vector<Tensor> adamw_trajectory(const std::vector<Tensor>& in, const nlohmann::json& a) {
  const double lr = a.at("lr").get<double>(), beta1 = a.at("beta1").get<double>();
  const double beta2 = a.at("beta2").get<double>(), eps = a.at("eps").get<double>();
  const double weight_decay = a.at("weight_decay").get<double>();
  const int64_t steps = a.at("steps").get<int64_t>();
  const Tensor& scale = in[1];
  const Tensor& target = in[2];

  Tensor p = clone(in[0]).detach();
  Tensor m = zeros_like(p), v = zeros_like(p);
  std::vector<Tensor> trajectory;
  for (int64_t t = 1; t <= steps; ++t) {
    p.requires_grad_();
    Tensor loss = 0.5 * sum(scale * square(p - target));
    Tensor g = grad({loss}, {p})[0];
    NoGradGuard no_grad;
    p = p.detach() * (1.0 - lr * weight_decay);  // decoupled weight decay first, as torch
    m = beta1 * m + (1.0 - beta1) * g;
    v = beta2 * v + (1.0 - beta2) * square(g);
    const double bias1 = 1.0 - std::pow(beta1, double(t)), bias2 = 1.0 - std::pow(beta2, double(t));
    Tensor denom = sqrt(v) / std::sqrt(bias2) + eps;
    p = p - (lr / bias1) * (m / denom);
    trajectory.push_back(unsqueeze(p, 0));
  }
  // concat is one of the ops being written; build the result without it.
  Tensor out = Tensor::empty([&] {
    Shape s = p.shape();
    s.insert(s.begin(), steps);
    return s;
  }(), p.dtype());
  const size_t step_bytes = p.nbytes();
  for (int64_t t = 0; t < steps; ++t) {
    Tensor step = contiguous(trajectory[size_t(t)]);
    std::memcpy(static_cast<char*>(out.raw_data()) + size_t(t) * step_bytes, step.raw_data(), step_bytes);
  }
  return {out};
}

}  // namespace ember::conformance
