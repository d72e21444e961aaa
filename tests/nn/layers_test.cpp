// Layers: initialisation (bounds, reproducibility), forward values of Linear,
// LayerNorm, RMSNorm, MLP (all activations) and Embedding against hand
// computations, Dropout in train vs eval mode, and gradients through an MLP.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/ember.h"
#include "ember/nn/nn.h"

using namespace ember;

namespace {

void set_values(const Tensor& t, const std::vector<double>& v) { nn::copy_(t, tensor(v, t.shape(), DType::f64)); }

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }

// y = x W^T + b in float64, W [out, in] row-major.
std::vector<double> linear_ref(const std::vector<double>& x, int64_t rows, const std::vector<double>& w,
                               const std::vector<double>& b, int64_t in, int64_t out) {
  std::vector<double> y(size_t(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b.empty() ? 0.0 : b[size_t(o)];
      for (int64_t i = 0; i < in; ++i) acc += x[size_t(r * in + i)] * w[size_t(o * in + i)];
      y[size_t(r * out + o)] = acc;
    }
  return y;
}

}  // namespace

TEST(NnInit, LinearDefaultInitBoundsAndReproducibility) {
  Generator g1(7), g2(7), g3(8);
  nn::Linear a(64, 16, true, &g1), b(64, 16, true, &g2), c(64, 16, true, &g3);
  EXPECT_EQ(a.weight.shape(), (Shape{16, 64}));
  EXPECT_EQ(a.bias.shape(), (Shape{16}));
  EXPECT_EQ(a.weight.to_vector<float>(), b.weight.to_vector<float>());
  EXPECT_EQ(a.bias.to_vector<float>(), b.bias.to_vector<float>());
  EXPECT_NE(a.weight.to_vector<float>(), c.weight.to_vector<float>());
  const double bound = 1.0 / 8.0;  // 1 / sqrt(in)
  double lo = 1, hi = -1, sum_sq = 0;
  for (float v : a.weight.to_vector<float>()) {
    lo = std::min(lo, double(v));
    hi = std::max(hi, double(v));
    sum_sq += double(v) * v;
  }
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.9 * bound);  // the whole range is used
  EXPECT_GT(hi, 0.9 * bound);
  EXPECT_NEAR(sum_sq / 1024.0, bound * bound / 3.0, 0.15 * bound * bound / 3.0);  // variance of U(-b, b)
  for (float v : a.bias.to_vector<float>()) EXPECT_LE(std::abs(v), bound);
  nn::Linear no_bias(3, 2, false);
  EXPECT_FALSE(no_bias.bias.defined());
  EXPECT_EQ(no_bias.parameters().size(), 1u);
}

TEST(NnInit, Initialisers) {
  Generator gen(3);
  Tensor t = zeros({200, 100});
  nn::init::normal_(t, 1.0, 2.0, &gen);
  double m = mean(t).item<double>(), sd = std::sqrt(var(t).item<double>());
  EXPECT_NEAR(m, 1.0, 0.05);
  EXPECT_NEAR(sd, 2.0, 0.05);
  nn::init::xavier_uniform_(t, 1.0, &gen);
  double a = std::sqrt(6.0 / 300.0);
  EXPECT_LE(max(abs(t)).item<double>(), a);
  EXPECT_GT(max(abs(t)).item<double>(), 0.95 * a);
  nn::init::kaiming_uniform_(t, 0.0, nn::init::FanMode::fan_in, "relu", &gen);
  EXPECT_LE(max(abs(t)).item<double>(), std::sqrt(2.0) * std::sqrt(3.0 / 100.0));
  nn::init::kaiming_normal_(t, 0.0, nn::init::FanMode::fan_out, "relu", &gen);
  EXPECT_NEAR(std::sqrt(var(t).item<double>()), std::sqrt(2.0 / 200.0), 0.005);
  nn::init::ones_(t);
  EXPECT_EQ(sum(t).item<double>(), 20000.0);
  nn::init::constant_(t, 0.5);
  EXPECT_EQ(sum(t).item<double>(), 10000.0);
  nn::init::zeros_(t);
  EXPECT_EQ(sum(t).item<double>(), 0.0);
  Tensor b = zeros({4}, DType::bf16);
  nn::init::uniform_(b, -1.0, 1.0, &gen);
  EXPECT_LE(max(abs(b)).item<double>(), 1.0);
  EXPECT_EQ(nn::init::fan_in_and_out(zeros({8, 3, 5, 5})), (std::pair<int64_t, int64_t>{75, 200}));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_THROW(nn::init::xavier_uniform_(zeros({5})), Error);
  EXPECT_THROW(nn::init::calculate_gain("swish"), Error);
  EXPECT_THROW(nn::init::normal_(zeros({2}, DType::i64)), Error);
}

TEST(NnLayers, LinearForward) {
  nn::Linear lin(3, 2);
  set_values(lin.weight, {1, 2, 3, -1, 0.5, 0});
  set_values(lin.bias, {0.5, -1});
  Tensor y = lin(tensor({1, 0, -1, 2, 1, 1}, {2, 3}));
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{-1.5, -2, 7.5, -2.5}));
  // Leading dimensions are kept.
  EXPECT_EQ(lin(zeros({4, 5, 3})).shape(), (Shape{4, 5, 2}));
  try {
    lin(zeros({2, 4}));
    ADD_FAILURE() << "wrong input width accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "[Linear] expects input [..., 3], got [2, 4]");
  }
}

TEST(NnLayers, LayerNormAndRMSNormForward) {
  nn::LayerNorm ln(3);
  // torch.nn.LayerNorm(3)(tensor([[1., 2., 3.]]))
  std::vector<float> y = ln(tensor({1, 2, 3}, {1, 3})).to_vector<float>();
  EXPECT_NEAR(y[0], -1.2247356176376343, 1e-6);
  EXPECT_NEAR(y[1], 0.0, 1e-6);
  EXPECT_NEAR(y[2], 1.2247356176376343, 1e-6);
  set_values(ln.weight, {1, 2, 3});
  set_values(ln.bias, {0.5, 0.5, 0.5});
  y = ln(tensor({1, 2, 3}, {1, 3})).to_vector<float>();
  EXPECT_NEAR(y[0], 0.5 - 1.2247356176376343, 1e-6);
  EXPECT_NEAR(y[2], 0.5 + 3 * 1.2247356176376343, 1e-6);
  nn::LayerNorm plain(3, 1e-5, /*affine=*/false);
  EXPECT_TRUE(plain.parameters().empty());
  nn::LayerNorm no_bias(3, 1e-5, true, false);
  EXPECT_EQ(no_bias.parameters().size(), 1u);

  nn::RMSNorm rms(3, 1e-6);
  set_values(rms.weight, {1, 1, 2});
  double r = std::sqrt(14.0 / 3.0 + 1e-6);
  y = rms(tensor({1, 2, 3}, {3})).to_vector<float>();
  EXPECT_NEAR(y[0], 1 / r, 1e-6);
  EXPECT_NEAR(y[1], 2 / r, 1e-6);
  EXPECT_NEAR(y[2], 6 / r, 1e-6);
  EXPECT_THROW(ln(zeros({2, 4})), Error);
  EXPECT_THROW(nn::LayerNorm(0), Error);
}

TEST(NnLayers, MLPForwardAllActivations) {
  const std::vector<double> x = {0.5, -1.0, 1.5, 0.25};  // [2, 2]
  for (nn::Activation act : {nn::Activation::gelu, nn::Activation::gelu_tanh, nn::Activation::relu,
                             nn::Activation::silu, nn::Activation::tanh, nn::Activation::swiglu}) {
    bool gated = act == nn::Activation::swiglu;
    nn::MLP mlp(2, 3, act);
    int64_t fc_out = gated ? 6 : 3;
    std::vector<double> w1, b1, w2 = {0.3, -0.2, 0.1, 0.5, 0.4, -0.6}, b2 = {0.05, -0.05};
    for (int64_t i = 0; i < fc_out * 2; ++i) w1.push_back(0.1 * double(i) - 0.4);
    for (int64_t i = 0; i < fc_out; ++i) b1.push_back(0.02 * double(i));
    set_values(mlp.c_fc->weight, w1);
    set_values(mlp.c_fc->bias, b1);
    set_values(mlp.c_proj->weight, w2);
    set_values(mlp.c_proj->bias, b2);
    std::vector<double> h = linear_ref(x, 2, w1, b1, 2, fc_out), a(6);
    for (int r = 0; r < 2; ++r)
      for (int j = 0; j < 3; ++j) {
        double v = h[size_t(r * fc_out + j)];
        switch (act) {
          case nn::Activation::gelu: a[size_t(r * 3 + j)] = gelu_ref(v); break;
          case nn::Activation::gelu_tanh:
            a[size_t(r * 3 + j)] = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            break;
          case nn::Activation::relu: a[size_t(r * 3 + j)] = std::max(v, 0.0); break;
          case nn::Activation::silu: a[size_t(r * 3 + j)] = silu_ref(v); break;
          case nn::Activation::tanh: a[size_t(r * 3 + j)] = std::tanh(v); break;
          case nn::Activation::swiglu: a[size_t(r * 3 + j)] = silu_ref(v) * h[size_t(r * fc_out + 3 + j)]; break;
        }
      }
    std::vector<double> want = linear_ref(a, 2, w2, b2, 3, 2);
    std::vector<float> got = mlp(tensor(x, {2, 2})).to_vector<float>();
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << nn::activation_name(act) << " " << i;
  }
  EXPECT_EQ(nn::activation_from_name("swiglu"), nn::Activation::swiglu);
  EXPECT_THROW(nn::activation_from_name("swish"), Error);
  EXPECT_THROW(nn::ActivationLayer(nn::Activation::swiglu), Error);
}

TEST(NnLayers, MLPGradientsCheckInFloat64) {
  nn::MLP mlp(3, 4, nn::Activation::gelu);
  mlp.to(DType::f64);
  Generator gen(5);
  Tensor x = randn({2, 3}, DType::f64, Device::cpu(), &gen);
  // With respect to the input, through the module.
  auto result = gradcheck([&](const std::vector<Tensor>& in) { return mlp(in[0]); }, {x});
  EXPECT_TRUE(result.ok) << result.message;
  // With respect to every parameter: autograd's .grad against central differences
  // of L = sum(mlp(x) * u), perturbing the parameters in place.
  Tensor u = randn({2, 3}, DType::f64, Device::cpu(), &gen);
  sum(mlp(x) * u).backward();
  auto loss = [&] {
    NoGradGuard no_grad;
    return sum(mlp(x) * u).item<double>();
  };
  for (const auto& [name, p] : mlp.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    std::vector<double> analytic = p.grad().to_vector<double>();
    double* data = p.data<double>();
    for (int64_t j = 0; j < p.numel(); ++j) {
      double saved = data[j];
      data[j] = saved + 1e-6;
      double plus = loss();
      data[j] = saved - 1e-6;
      double minus = loss();
      data[j] = saved;
      EXPECT_NEAR(analytic[size_t(j)], (plus - minus) / 2e-6, 1e-6) << name << " element " << j;
    }
  }
}

TEST(NnLayers, EmbeddingLooksUpRows) {
  nn::Embedding emb(4, 2);
  set_values(emb.weight, {0, 1, 10, 11, 20, 21, 30, 31});
  Tensor y = emb(tensor_i64({3, 0, 3, 1}, {2, 2}));
  EXPECT_EQ(y.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{30, 31, 0, 1, 30, 31, 10, 11}));
  // N(0, 1) initialisation.
  nn::Embedding big(1000, 50);
  EXPECT_NEAR(mean(big.weight).item<double>(), 0.0, 0.02);
  EXPECT_NEAR(std::sqrt(var(big.weight).item<double>()), 1.0, 0.02);
}

TEST(NnLayers, DropoutTrainVersusEval) {
  nn::Dropout drop(0.25);
  Tensor x = ones({20000});
  Tensor y = drop(x);
  std::vector<float> v = y.to_vector<float>();
  int64_t zeros_seen = 0;
  for (float e : v) {
    if (e == 0.0f) ++zeros_seen;
    else EXPECT_FLOAT_EQ(e, 1.0f / 0.75f);
  }
  EXPECT_NEAR(double(zeros_seen) / 20000.0, 0.25, 0.02);
  drop.eval();
  EXPECT_TRUE(drop(x).same(x));  // identity in eval mode
  EXPECT_TRUE(nn::Dropout(0.0)(x).same(x));
  EXPECT_THROW(nn::Dropout(1.0), Error);
  EXPECT_THROW(nn::Dropout(-0.1), Error);
}
