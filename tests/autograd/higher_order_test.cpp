// Second-order autodiff: grad(create_graph=true) followed by grad again.
// Hessian-vector products of a small 2-layer MLP and of every differentiable op
// are checked against central differences of the gradient, and d²/dx² of the
// common activations against their closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "ember/ember.h"

using namespace ember;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor randn64(const Shape& s, uint64_t seed, double scale = 1.0) {
  Generator g(seed);
  return randn(s, DType::f64, Device::cpu(), &g) * scale;
}

std::vector<Tensor> make_leaves(const std::vector<Tensor>& values) {
  std::vector<Tensor> out;
  for (const Tensor& v : values) {
    Tensor t = clone(v.detach());
    t.requires_grad_();
    out.push_back(t);
  }
  return out;
}

// Gradient of sum(fn(xs) * u) with respect to xs (zeros for unused inputs).
std::vector<Tensor> gradient(const Fn& fn, const std::vector<Tensor>& xs, const Tensor& u, bool create_graph) {
  Tensor out = fn(xs);
  std::vector<Tensor> g = grad({sum(out * u)}, xs, {}, false, create_graph, /*allow_unused=*/true);
  for (size_t i = 0; i < g.size(); ++i)
    if (!g[i].defined()) g[i] = zeros_like(xs[i]);
  return g;
}

// Hessian-vector product H v of L(xs) = sum(fn(xs) * u): autodiff (grad of the
// gradient) against central differences of the gradient along v.
void expect_hvp_matches(const Fn& fn, const std::vector<Tensor>& values, double tol = 1e-6, uint64_t seed = 99) {
  std::vector<Tensor> xs = make_leaves(values);
  Tensor u = randn64(fn(xs).shape(), seed);
  std::vector<Tensor> v;
  for (size_t i = 0; i < xs.size(); ++i) v.push_back(randn64(xs[i].shape(), seed + 1 + i));

  std::vector<Tensor> g = gradient(fn, xs, u, /*create_graph=*/true);
  Tensor gv = zeros({}, DType::f64);
  for (size_t i = 0; i < xs.size(); ++i) gv = gv + sum(g[i] * v[i]);
  std::vector<Tensor> hv;
  if (gv.requires_grad()) hv = grad({gv}, xs, {}, false, false, /*allow_unused=*/true);
  hv.resize(xs.size());

  const double eps = 1e-5;
  std::vector<Tensor> plus, minus;
  for (size_t i = 0; i < xs.size(); ++i) {
    plus.push_back(values[i] + v[i] * eps);
    minus.push_back(values[i] - v[i] * eps);
  }
  std::vector<Tensor> gp = gradient(fn, make_leaves(plus), u, false), gm = gradient(fn, make_leaves(minus), u, false);
  for (size_t i = 0; i < xs.size(); ++i) {
    std::vector<double> numeric = ((gp[i] - gm[i]) / (2 * eps)).to_vector<double>();
    std::vector<double> analytic = hv[i].defined() ? hv[i].to_vector<double>() : std::vector<double>(numeric.size(), 0);
    ASSERT_EQ(numeric.size(), analytic.size());
    for (size_t j = 0; j < numeric.size(); ++j)
      ASSERT_NEAR(analytic[j], numeric[j], tol * (1 + std::abs(numeric[j])))
          << "input " << i << " element " << j;
  }
}

// d²/dx² of an elementwise f through two grad calls.
std::vector<double> second_derivative(const std::function<Tensor(const Tensor&)>& f, const std::vector<double>& xv) {
  Tensor x = tensor(xv, {int64_t(xv.size())}, DType::f64);
  x.requires_grad_();
  Tensor g = grad({sum(f(x))}, {x}, {}, false, /*create_graph=*/true)[0];
  EXPECT_TRUE(g.requires_grad());
  return grad({sum(g)}, {x})[0].to_vector<double>();
}

double phi(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }
double sigm(double x) { return 1 / (1 + std::exp(-x)); }

// A 2-layer MLP written with broadcasting multiply + sum instead of matmul:
// h = tanh(x W1 + b1), y = h W2 + b2, loss = mean((y - target)^2).
Tensor mlp_loss(const std::vector<Tensor>& p, const Tensor& x, const Tensor& target) {
  const Tensor &w1 = p[0], &b1 = p[1], &w2 = p[2], &b2 = p[3];
  Tensor h = tanh(sum(unsqueeze(x, 2) * w1, {1}) + b1);   // [B, I, 1] * [I, H] -> sum over I
  Tensor y = sum(unsqueeze(h, 2) * w2, {1}) + b2;         // [B, H, 1] * [H, O] -> sum over H
  return mean(square(y - target));
}

}  // namespace

TEST(HigherOrder, ClosedFormSecondDerivatives) {
  std::vector<double> xs{-2.5, -1, -0.3, 0, 0.4, 1.2, 2.7};
  auto check = [&](const char* name, const std::function<Tensor(const Tensor&)>& f,
                   const std::function<double(double)>& want) {
    SCOPED_TRACE(name);
    std::vector<double> got = second_derivative(f, xs);
    for (size_t i = 0; i < xs.size(); ++i) EXPECT_NEAR(got[i], want(xs[i]), 1e-12) << "x = " << xs[i];
  };
  check("tanh", [](const Tensor& x) { return tanh(x); },
        [](double x) { double t = std::tanh(x); return -2 * t * (1 - t * t); });
  check("exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); });
  check("sigmoid", [](const Tensor& x) { return sigmoid(x); },
        [](double x) { double s = sigm(x); return s * (1 - s) * (1 - 2 * s); });
  check("gelu", [](const Tensor& x) { return gelu(x); }, [](double x) { return phi(x) * (2 - x * x); });
  check("gelu_tanh", [](const Tensor& x) { return gelu(x, true); }, [](double x) {
    const double k = std::sqrt(2 / M_PI), c = 0.044715;
    double u1 = k * (1 + 3 * c * x * x), u2 = 6 * k * c * x, t = std::tanh(k * (x + c * x * x * x));
    return (1 - t * t) * u1 + 0.5 * x * (1 - t * t) * (u2 - 2 * t * u1 * u1);
  });
  check("silu", [](const Tensor& x) { return silu(x); },
        [](double x) { double s = sigm(x); return s * (1 - s) * (2 + x * (1 - 2 * s)); });
  check("log", [](const Tensor& x) { return log(x + 3.0); }, [](double x) { return -1 / ((x + 3) * (x + 3)); });
  check("sqrt", [](const Tensor& x) { return sqrt(x + 3.0); },
        [](double x) { return -0.25 * std::pow(x + 3, -1.5); });
  check("rsqrt", [](const Tensor& x) { return rsqrt(x + 3.0); },
        [](double x) { return 0.75 * std::pow(x + 3, -2.5); });
  check("reciprocal", [](const Tensor& x) { return reciprocal(x + 3.0); },
        [](double x) { return 2 / std::pow(x + 3, 3); });
  check("erf", [](const Tensor& x) { return erf(x); },
        [](double x) { return -4 * x / std::sqrt(M_PI) * std::exp(-x * x); });
  check("sin", [](const Tensor& x) { return sin(x); }, [](double x) { return -std::sin(x); });
  check("cube", [](const Tensor& x) { return pow(x, 3.0); }, [](double x) { return 6 * x; });
}

TEST(HigherOrder, MlpHessianVectorProductMatchesFiniteDifferences) {
  const int64_t B = 5, I = 4, H = 6, O = 3;
  Tensor x = randn64({B, I}, 1), target = randn64({B, O}, 2);
  std::vector<Tensor> params{randn64({I, H}, 3, 0.5), randn64({H}, 4, 0.1), randn64({H, O}, 5, 0.5),
                             randn64({O}, 6, 0.1)};
  expect_hvp_matches([&](const std::vector<Tensor>& p) { return mlp_loss(p, x, target); }, params, 1e-6);
}

TEST(HigherOrder, MlpHessianVectorProductWithMatmul) {
  // The same check through matmul, when it is available in this build.
  Tensor probe = zeros({2, 2}, DType::f64);
  try {
    matmul(probe, probe);
  } catch (const Error& e) {
    if (std::string(e.what()).find("not implemented") != std::string::npos) GTEST_SKIP() << e.what();
    throw;
  }
  Tensor x = randn64({5, 4}, 1), target = randn64({5, 3}, 2);
  std::vector<Tensor> params{randn64({4, 6}, 3, 0.5), randn64({6}, 4, 0.1), randn64({6, 3}, 5, 0.5)};
  expect_hvp_matches(
      [&](const std::vector<Tensor>& p) {
        Tensor h = tanh(matmul(x, p[0]) + p[1]);
        return mean(square(matmul(h, p[2]) - target));
      },
      params, 1e-6);
}

TEST(HigherOrder, HessianVectorProductOfEveryDifferentiableOp) {
  struct Case {
    const char* name;
    Fn fn;
    std::vector<Tensor> inputs;
  };
  Tensor a = randn64({3, 4}, 10), b = randn64({3, 4}, 11), row = randn64({4}, 12);
  Tensor pos = abs(randn64({3, 4}, 13)) + 0.5, pos_row = abs(randn64({4}, 14)) + 0.5;
  Tensor cond = gt(randn64({3, 4}, 15), scalar(0.0, DType::f64));
  std::vector<Case> cases{
      {"mul broadcast", [](const std::vector<Tensor>& t) { return t[0] * t[1] * t[0]; }, {a, row}},
      {"div", [](const std::vector<Tensor>& t) { return t[0] / t[1]; }, {a, pos_row}},
      {"pow both", [](const std::vector<Tensor>& t) { return pow(t[0], t[1]); }, {pos, row}},
      {"maximum", [](const std::vector<Tensor>& t) { return maximum(t[0], t[1]) * t[0]; }, {a, b}},
      {"where", [&](const std::vector<Tensor>& t) { return where(cond, t[0] * t[0], exp(t[1])); }, {a, b}},
      {"clamp", [](const std::vector<Tensor>& t) { return square(clamp(t[0], -0.5, 0.5)) * t[0]; }, {a}},
      {"abs", [](const std::vector<Tensor>& t) { return abs(t[0]) * t[0]; }, {a}},
      {"relu", [](const std::vector<Tensor>& t) { return relu(t[0]) * t[0]; }, {a}},
      {"cos", [](const std::vector<Tensor>& t) { return cos(t[0]); }, {a}},
      {"sum", [](const std::vector<Tensor>& t) { return square(sum(t[0] * t[0], {1})); }, {a}},
      {"mean keepdim", [](const std::vector<Tensor>& t) { return t[0] * mean(t[0], {0}, true); }, {a}},
      {"max", [](const std::vector<Tensor>& t) { return square(max(t[0], {1})); }, {a}},
      {"min", [](const std::vector<Tensor>& t) { return min(t[0] * t[0], {0}); }, {a}},
      {"prod", [](const std::vector<Tensor>& t) { return prod(t[0], {1}); }, {pos}},
      {"var", [](const std::vector<Tensor>& t) { return var(t[0], {1}); }, {a}},
      {"logsumexp", [](const std::vector<Tensor>& t) { return logsumexp(t[0], {0, 1}); }, {a}},
      {"views", [](const std::vector<Tensor>& t) {
         return square(reshape(transpose(slice(t[0], 1, 0, 4, 2), 0, 1), {-1}));
       }, {a}},
      {"select expand", [](const std::vector<Tensor>& t) {
         return exp(expand(unsqueeze(select(t[0], 0, 1), 0), {2, -1}));
       }, {a}},
      {"contiguous", [](const std::vector<Tensor>& t) { return square(contiguous(transpose(t[0], 0, 1))); }, {a}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    expect_hvp_matches(c.fn, c.inputs, 1e-5);
  }
}

TEST(HigherOrder, BackwardWithCreateGraphAccumulatesDifferentiableGrad) {
  Tensor x = tensor({0.5, -1}, {2}, DType::f64);
  x.requires_grad_();
  sum(x * x * x).backward({}, false, /*create_graph=*/true);
  Tensor g = x.grad();  // 3 x^2, with history
  EXPECT_TRUE(g.requires_grad());
  std::vector<Tensor> h = grad({sum(g)}, {x});
  EXPECT_EQ(h[0].to_vector<double>(), (std::vector<double>{3, -6}));
}

TEST(HigherOrder, ThirdDerivative) {
  Tensor x = tensor({0.7}, {1}, DType::f64);
  x.requires_grad_();
  Tensor g1 = grad({sum(exp(x * 2.0))}, {x}, {}, false, true)[0];
  Tensor g2 = grad({sum(g1)}, {x}, {}, false, true)[0];
  Tensor g3 = grad({sum(g2)}, {x})[0];
  EXPECT_NEAR(g3.item<double>(), 8 * std::exp(1.4), 1e-12);
  Tensor y = tensor({0.3}, {1}, DType::f64);
  y.requires_grad_();
  Tensor t1 = grad({sum(tanh(y))}, {y}, {}, false, true)[0];
  Tensor t2 = grad({sum(t1)}, {y}, {}, false, true)[0];
  Tensor t3 = grad({sum(t2)}, {y})[0];
  double t = std::tanh(0.3), s = 1 - t * t;
  EXPECT_NEAR(t3.item<double>(), -2 * s * s + 4 * t * t * s, 1e-12);
}
