// CausalSelfAttention: output shape, agreement with attention written out in
// float64 loops (which also pins the q/k/v and head layout of c_attn), grouped
// query attention, causality, and argument checks.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/ember.h"
#include "ember/nn/nn.h"

using namespace ember;

namespace {

// Causal attention over x [B, T, C] with the module's weights, in float64.
std::vector<double> attention_reference(const nn::CausalSelfAttention& a, const std::vector<double>& x, int64_t B,
                                        int64_t T) {
  const int64_t C = a.n_embd, H = a.n_head, Hkv = a.n_kv_head, D = a.head_dim, W = (H + 2 * Hkv) * D;
  std::vector<double> wa = a.c_attn->weight.to_vector<double>(), ba = a.c_attn->bias.to_vector<double>();
  std::vector<double> wp = a.c_proj->weight.to_vector<double>(), bp = a.c_proj->bias.to_vector<double>();
  std::vector<double> qkv(size_t(B * T * W));
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t o = 0; o < W; ++o) {
      double acc = ba[size_t(o)];
      for (int64_t i = 0; i < C; ++i) acc += x[size_t(r * C + i)] * wa[size_t(o * C + i)];
      qkv[size_t(r * W + o)] = acc;
    }
  std::vector<double> y(size_t(B * T * C));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      int64_t kv = h / (H / Hkv);
      for (int64_t t = 0; t < T; ++t) {
        auto q = [&](int64_t d) { return qkv[size_t((b * T + t) * W + h * D + d)]; };
        auto k = [&](int64_t s, int64_t d) { return qkv[size_t((b * T + s) * W + (H + kv) * D + d)]; };
        auto v = [&](int64_t s, int64_t d) { return qkv[size_t((b * T + s) * W + (H + Hkv + kv) * D + d)]; };
        std::vector<double> score(size_t(t + 1));
        double mx = -1e300, z = 0;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += q(d) * k(s, d);
          score[size_t(s)] = dot / std::sqrt(double(D));
          mx = std::max(mx, score[size_t(s)]);
        }
        for (double& e : score) z += (e = std::exp(e - mx));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t s = 0; s <= t; ++s) acc += score[size_t(s)] / z * v(s, d);
          y[size_t((b * T + t) * C + h * D + d)] = acc;
        }
      }
    }
  std::vector<double> out(size_t(B * T * C));
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t o = 0; o < C; ++o) {
      double acc = bp[size_t(o)];
      for (int64_t i = 0; i < C; ++i) acc += y[size_t(r * C + i)] * wp[size_t(o * C + i)];
      out[size_t(r * C + o)] = acc;
    }
  return out;
}

void check_against_reference(int64_t n_head, int64_t n_kv_head) {
  Generator gen(11);
  nn::CausalSelfAttention attn(8, n_head, n_kv_head, true, 0.0, &gen);
  const int64_t B = 2, T = 5;
  Tensor x = randn({B, T, 8}, DType::f32, Device::cpu(), &gen);
  Tensor y = attn(x);
  ASSERT_EQ(y.shape(), (Shape{B, T, 8}));
  std::vector<double> want = attention_reference(attn, x.to_vector<double>(), B, T);
  std::vector<float> got = y.to_vector<float>();
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 2e-5) << "n_head " << n_head << " n_kv_head " << n_kv_head << " element " << i;
}

}  // namespace

TEST(NnAttention, ShapesAndParameters) {
  nn::CausalSelfAttention mha(8, 2);
  EXPECT_EQ(mha.n_kv_head, 2);
  EXPECT_EQ(mha.head_dim, 4);
  EXPECT_EQ(mha.c_attn->weight.shape(), (Shape{24, 8}));
  nn::CausalSelfAttention gqa(8, 4, 2, false);
  EXPECT_EQ(gqa.c_attn->weight.shape(), (Shape{16, 8}));  // (4 + 2 * 2) heads of 2
  EXPECT_FALSE(gqa.c_attn->bias.defined());
  std::vector<std::string> names;
  for (auto& [n, t] : mha.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"}));
}

TEST(NnAttention, MatchesFloat64Reference) {
  check_against_reference(2, 2);
  check_against_reference(4, 1);
  check_against_reference(4, 2);
}

TEST(NnAttention, IsCausal) {
  Generator gen(2);
  nn::CausalSelfAttention attn(8, 2, 0, true, 0.0, &gen);
  Tensor x = randn({1, 6, 8}, DType::f32, Device::cpu(), &gen);
  std::vector<double> changed = x.to_vector<double>();
  for (int64_t c = 0; c < 8; ++c) changed[size_t(3 * 8 + c)] += 1.0;  // token 3
  std::vector<float> a = attn(x).to_vector<float>();
  std::vector<float> b = attn(tensor(changed, {1, 6, 8})).to_vector<float>();
  for (int64_t t = 0; t < 6; ++t) {
    double diff = 0;
    for (int64_t c = 0; c < 8; ++c)
      diff = std::max(diff, double(std::abs(a[size_t(t * 8 + c)] - b[size_t(t * 8 + c)])));
    if (t < 3) EXPECT_EQ(diff, 0.0) << "token " << t << " saw the future";
    else EXPECT_GT(diff, 1e-4) << "token " << t;
  }
}

TEST(NnAttention, GradientsReachEveryParameter) {
  nn::CausalSelfAttention attn(8, 4, 2);
  Tensor x = randn({2, 3, 8});
  x.requires_grad_();
  sum(square(attn(x))).backward();
  for (auto& [n, p] : attn.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << n;
    EXPECT_GT(max(abs(p.grad())).item<double>(), 0.0) << n;
  }
  EXPECT_TRUE(x.grad().defined());
}

TEST(NnAttention, RejectsBadConfigurations) {
  auto expect_error = [](auto&& fn, const std::string& msg) {
    try {
      fn();
      ADD_FAILURE() << "no error, expected: " << msg;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), msg);
    }
  };
  expect_error([] { nn::CausalSelfAttention(10, 4); }, "[CausalSelfAttention] n_embd 10 is not divisible by n_head 4");
  expect_error([] { nn::CausalSelfAttention(8, 4, 3); },
               "[CausalSelfAttention] n_head 4 is not a multiple of n_kv_head 3");
  nn::CausalSelfAttention attn(8, 2);
  expect_error([&] { attn(zeros({2, 8})); }, "[CausalSelfAttention] expects input [B, T, 8], got [2, 8]");
}
