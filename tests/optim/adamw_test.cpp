// AdamW: 5-step trajectories against PyTorch (constants below, from
// torch.optim.AdamW 2.x on CPU with the gradients of optim_test_util.h) and
// against the update written out in float64 in the test; bf16 parameters with
// float32 state;
// the fused kernel's parallel path; argument checks.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/optim/optim.h"
#include "optim/optim_test_util.h"

using namespace ember;
using namespace ember::optim;
using namespace ember::optim_test;

namespace {

// The update of torch.optim.AdamW, in float64.
std::vector<double> adamw_reference(std::vector<double> p, int steps, double lr, double b1, double b2, double eps,
                                    double wd) {
  std::vector<double> m(p.size(), 0.0), v(p.size(), 0.0);
  for (int t = 0; t < steps; ++t) {
    std::vector<double> g = grad_values(p, t);
    double bc1 = 1.0 - std::pow(b1, t + 1), bc2 = 1.0 - std::pow(b2, t + 1);
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1.0 - lr * wd;
      m[i] = b1 * m[i] + (1.0 - b1) * g[i];
      v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
      p[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
    }
  }
  return p;
}

std::vector<double> run_adamw(DType dtype, const AdamWOptions& o, int steps = 5) {
  Tensor p = make_param(dtype);
  AdamW opt({p}, o);
  for (int t = 0; t < steps; ++t) {
    set_test_grad(p, t);
    opt.step();
  }
  return p.to_vector<double>();
}

}  // namespace

TEST(OptimAdamW, MatchesPyTorchFloat32) {
  // torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
  const std::vector<double> torch_result = {0.456492245, -1.14471889, 1.94024014,
                                            0.0490128696, -0.649102211, 1.44286382};
  expect_near_all(run_adamw(DType::f32, {0.01, 0.9, 0.95, 1e-8, 0.1}), torch_result, 1e-6);
  // torch.optim.AdamW([p], lr=0.05) (defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2)
  const std::vector<double> torch_default = {0.308353961, -0.949427545, 1.7457664,
                                             0.101269044, -0.469981909, 1.24901521};
  AdamWOptions o;
  o.lr = 0.05;
  expect_near_all(run_adamw(DType::f32, o), torch_default, 1e-6);
}

TEST(OptimAdamW, MatchesFloat64Formula) {
  AdamWOptions o{0.01, 0.9, 0.95, 1e-8, 0.1};
  std::vector<double> want = adamw_reference(kP0, 5, 0.01, 0.9, 0.95, 1e-8, 0.1);
  expect_near_all(run_adamw(DType::f64, o), want, 1e-13);
  // float32 follows the same trajectory to float rounding.
  expect_near_all(run_adamw(DType::f32, o), want, 2e-6);
}

TEST(OptimAdamW, BFloat16ParamsKeepFloat32State) {
  // With float32 state and the whole update done in float before one rounding
  // to bfloat16, the result is the exact update rounded to bf16 each step (torch,
  // which keeps bf16 state and rounds after every sub-operation, drifts from it:
  // the decay p * (1 - lr wd) alone rounds back to p). Emulate that in float64.
  auto bf16_round = [](double x) { return double(float(bfloat16(float(x)))); };
  std::vector<double> p = kP0, m(6, 0.0), v(6, 0.0);
  for (double& e : p) e = bf16_round(e);
  const double lr = 0.01, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
  for (int t = 0; t < 5; ++t) {
    std::vector<double> g = grad_values(p, t);
    for (size_t i = 0; i < 6; ++i) {
      double gi = bf16_round(double(float(g[i])));
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      double step = lr * (m[i] / (1 - std::pow(b1, t + 1))) / (std::sqrt(v[i] / (1 - std::pow(b2, t + 1))) + eps);
      p[i] = bf16_round(p[i] * (1 - lr * wd) - step);
    }
  }
  Tensor param = make_param(DType::bf16);
  AdamW opt({param}, {lr, b1, b2, eps, wd});
  for (int t = 0; t < 5; ++t) {
    set_test_grad(param, t);
    opt.step();
  }
  EXPECT_EQ(param.dtype(), DType::bf16);
  EXPECT_EQ(opt.state(0).tensors.at("exp_avg").dtype(), DType::f32);
  EXPECT_EQ(opt.state(0).tensors.at("exp_avg_sq").dtype(), DType::f32);
  std::vector<double> got = param.to_vector<double>();
  // Equal, or one bf16 step apart where float and float64 round differently.
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], p[i], std::abs(p[i]) / 128.0 + 1e-6) << i;
}

TEST(OptimAdamW, ParallelKernelMatchesFormulaOnLargeTensor) {
  // Large enough for the multi-threaded, vectorised path; each element checked.
  const int64_t n = 200003;
  std::vector<double> p0(static_cast<size_t>(n)), g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    p0[size_t(i)] = std::sin(0.001 * double(i));
    g[size_t(i)] = std::cos(0.003 * double(i)) - 0.2;
  }
  Tensor p = tensor(p0, {n}, DType::f64);
  p.requires_grad_();
  AdamWHyper h{0.02, 0.8, 0.9, 1e-6, 0.3, 1};
  Tensor m = zeros({n}, DType::f64), v = zeros({n}, DType::f64);
  for (int step = 1; step <= 2; ++step) {
    h.step = step;
    adamw_update_(p, tensor(g, {n}, DType::f64), m, v, h);
  }
  std::vector<double> got = p.to_vector<double>();
  for (int64_t i = 0; i < n; i += 997) {
    double pi = p0[size_t(i)], mi = 0, vi = 0, gi = g[size_t(i)];
    for (int step = 1; step <= 2; ++step) {
      pi *= 1 - 0.02 * 0.3;
      mi = 0.8 * mi + 0.2 * gi;
      vi = 0.9 * vi + 0.1 * gi * gi;
      pi -= 0.02 * (mi / (1 - std::pow(0.8, step))) / (std::sqrt(vi / (1 - std::pow(0.9, step))) + 1e-6);
    }
    EXPECT_NEAR(got[size_t(i)], pi, 1e-13) << "element " << i;
  }
}

TEST(OptimAdamW, SkipsParametersWithoutGradient) {
  Tensor a = make_param(), b = make_param();
  AdamW opt({a, b});
  set_test_grad(a, 0);
  opt.step();
  EXPECT_EQ(opt.state(0).step, 1);
  EXPECT_EQ(opt.state(1).step, 0);
  EXPECT_TRUE(opt.state(1).tensors.empty());
  EXPECT_EQ(b.to_vector<double>(), make_param().to_vector<double>());
}

TEST(OptimAdamW, NonContiguousGradientIsAccepted) {
  Tensor p = make_param(DType::f64);
  AdamW ref_opt({make_param(DType::f64)});
  AdamW opt({p});
  // The same values laid out transposed: the step must read them in logical order.
  std::vector<double> g = grad_values(kP0, 0);
  Tensor gt = transpose(tensor({g[0], g[3], g[1], g[4], g[2], g[5]}, {3, 2}, DType::f64), 0, 1);
  ASSERT_FALSE(gt.is_contiguous());
  p.set_grad(gt);
  opt.step();
  Tensor q = ref_opt.param_groups()[0].params[0];
  q.set_grad(tensor(g, {2, 3}, DType::f64));
  ref_opt.step();
  EXPECT_EQ(p.to_vector<double>(), q.to_vector<double>());
}

TEST(OptimAdamW, RejectsBadOptionsAndParameters) {
  Tensor p = make_param();
  auto expect_error = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error, expected one mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { AdamW({p}, {-1.0}); }, "[AdamW] invalid learning rate -1");
  expect_error([&] { AdamW({p}, {1e-3, 1.0}); }, "invalid beta1 1");
  expect_error([&] { AdamW({p}, {1e-3, 0.9, -0.1}); }, "invalid beta2");
  expect_error([&] { AdamW({p}, {1e-3, 0.9, 0.99, -1.0}); }, "invalid eps");
  expect_error([&] { AdamW({p}, {1e-3, 0.9, 0.99, 1e-8, -0.5}); }, "invalid weight_decay");
  expect_error([&] { AdamW({p, p}); }, "appears more than once");
  expect_error([&] { AdamW({p * 2.0}); }, "not a leaf");
  expect_error([&] { AdamW({tensor_i64({1}, {1})}); }, "floating-point");
  expect_error([&] { AdamW({transpose(tensor({1, 2, 3, 4}, {2, 2}), 0, 1)}); }, "contiguous");
  expect_error([&] { AdamW(std::vector<ParamGroup>{{{p}, {{"momentum", 0.9}}}}); }, "unknown option 'momentum'");
  // Mismatched state tensors are refused by the fused update itself.
  Tensor q = make_param();
  expect_error(
      [&] { adamw_update_(q, zeros({2, 3}), zeros({3, 2}), zeros({2, 3}), AdamWHyper{}); },
      "[adamw_update] exp_avg shape [3, 2] differs from parameter shape [2, 3]");
  expect_error(
      [&] { adamw_update_(q.detach(), zeros({2, 3}), zeros({2, 3}, DType::f64), zeros({2, 3}), AdamWHyper{}); },
      "exp_avg must be float32");
}
