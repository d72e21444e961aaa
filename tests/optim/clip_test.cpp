// Gradient norm and clip_grad_norm_: values against PyTorch, norm types,
// float64 accumulation, non-finite norms.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ember/ember.h"
#include "ember/optim/optim.h"

using namespace ember;
using namespace ember::optim;

namespace {
Tensor param_with_grad(const std::vector<double>& g, const Shape& shape, DType dt = DType::f32) {
  Tensor p = zeros(shape, dt);
  p.requires_grad_();
  p.set_grad(tensor(g, shape, dt));
  return p;
}
}  // namespace

TEST(OptimClip, ScalesToMaxNormLikePyTorch) {
  Tensor a = param_with_grad({3, 4}, {2}), b = param_with_grad({12}, {1, 1});
  Tensor no_grad = zeros({3});
  no_grad.requires_grad_();
  double norm = clip_grad_norm_({a, b, no_grad}, 6.5);
  EXPECT_DOUBLE_EQ(norm, 13.0);
  // torch.nn.utils.clip_grad_norm_ on the same gradients gives these.
  std::vector<float> ga = a.grad().to_vector<float>(), gb = b.grad().to_vector<float>();
  EXPECT_NEAR(ga[0], 1.4999998807907104, 1e-6);
  EXPECT_NEAR(ga[1], 1.9999998807907104, 1e-6);
  EXPECT_NEAR(gb[0], 5.999999523162842, 1e-6);
  EXPECT_FALSE(no_grad.grad().defined());
}

TEST(OptimClip, LeavesSmallGradientsAlone) {
  Tensor a = param_with_grad({0.3, -0.4}, {2});
  Tensor before = a.grad();
  EXPECT_NEAR(clip_grad_norm_({a}, 1.0), 0.5, 1e-7);
  EXPECT_TRUE(a.grad().same(before));
}

TEST(OptimClip, OtherNormTypes) {
  Tensor a = param_with_grad({3, -4}, {2}), b = param_with_grad({-12}, {1});
  EXPECT_DOUBLE_EQ(grad_norm({a, b}, 1.0), 19.0);
  EXPECT_DOUBLE_EQ(grad_norm({a, b}, std::numeric_limits<double>::infinity()), 12.0);
  EXPECT_NEAR(grad_norm({a, b}, 3.0), std::cbrt(27.0 + 64.0 + 1728.0), 1e-12);
  EXPECT_THROW(grad_norm({a}, 0.5), Error);
}

TEST(OptimClip, AccumulatesInFloat64) {
  // 1e6 float32 gradients of 1e-3: a float32 running sum of squares would be off
  // by ~1e-4 relative; the float64 one is exact to ~1e-11.
  const int64_t n = 1000000;
  Tensor p = zeros({n});
  p.requires_grad_();
  p.set_grad(full({n}, 1e-3));
  double want = std::sqrt(double(n)) * double(1e-3f);
  EXPECT_NEAR(grad_norm({p}), want, 1e-10);
  Tensor h = zeros({n}, DType::bf16);
  h.requires_grad_();
  h.set_grad(full({n}, 0.5, DType::bf16));
  EXPECT_NEAR(grad_norm({h}), 500.0, 1e-9);
  clip_grad_norm_({h}, 50.0);
  EXPECT_NEAR(h.grad().to_vector<float>()[0], 0.05, 0.05 / 128);
}

TEST(OptimClip, NonFiniteNormIsReported) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = param_with_grad({1.0, nan}, {2}), b = param_with_grad({100.0}, {1});
  double norm = clip_grad_norm_({a, b}, 1.0);
  EXPECT_TRUE(std::isnan(norm));
  EXPECT_EQ(b.grad().to_vector<float>()[0], 100.0f);  // untouched: the caller decides to skip the step
  EXPECT_TRUE(std::isnan(grad_norm({a, b}, std::numeric_limits<double>::infinity())));
  Tensor c = param_with_grad({std::numeric_limits<double>::infinity()}, {1});
  EXPECT_TRUE(std::isinf(clip_grad_norm_({c}, 1.0)));
  try {
    clip_grad_norm_({a}, 1.0, 2.0, /*error_if_nonfinite=*/true);
    ADD_FAILURE() << "non-finite norm accepted";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("[clip_grad_norm_] the total norm of order 2 of the gradients is "), std::string::npos) << msg;
    EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
  }
}
