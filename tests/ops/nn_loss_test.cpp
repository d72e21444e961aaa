// Tests for the fused cross_entropy: values and gradients against PyTorch for
// every reduction and ignore_index, a composite reference, float64 gradient
// checks of first and second order, and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ember/ember.h"

namespace ember {
namespace {

void expect_values(const Tensor& t, const std::vector<double>& want, double tol) {
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

Tensor rnd(const Shape& shape, uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return randn(shape, dtype, Device::cpu(), &gen);
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

Tensor logits3() { return tensor({1, 2, 3, 0.5, -1, 2, 0, 0, 0}, {3, 3}, DType::f64).requires_grad_(); }
Tensor targets3() { return tensor_i64({2, 0, -100}, {3}); }

TEST(NnCrossEntropy, MeanMatchesPyTorch) {
  Tensor z = logits3();
  Tensor loss = cross_entropy(z, targets3());
  EXPECT_EQ(loss.ndim(), 0);
  EXPECT_NEAR(loss.item<double>(), 1.0744586305507688, 1e-12);
  loss.backward();
  expect_values(z.grad(), {0.04501528658519022, 0.12236423552739882, -0.1673795221125891, -0.41235480392998164,
                           0.019556286635343725, 0.39279851729463794, 0, 0, 0},
                1e-12);
}

TEST(NnCrossEntropy, SumAndNoneMatchPyTorch) {
  Tensor z = logits3();
  Tensor s = cross_entropy(z, targets3(), -100, Reduction::sum);
  EXPECT_NEAR(s.item<double>(), 2.1489172611015377, 1e-12);
  s.backward();
  expect_values(z.grad(), {0.09003057317038043, 0.24472847105479764, -0.3347590442251782, -0.8247096078599633,
                           0.03911257327068745, 0.7855970345892759, 0, 0, 0},
                1e-12);
  Tensor z2 = logits3();
  Tensor n = cross_entropy(z2, targets3(), -100, Reduction::none);
  expect_values(n, {0.4076059644443804, 1.7413112966571571, 0.0}, 1e-12);
  n.backward(tensor({1, 2, 3}, {3}, DType::f64));
  expect_values(z2.grad(), {0.09003057317038043, 0.24472847105479764, -0.3347590442251782, -1.6494192157199266,
                            0.0782251465413749, 1.5711940691785518, 0, 0, 0},
                1e-12);
}

TEST(NnCrossEntropy, AllIgnoredMeanIsNanWithZeroGradient) {
  Tensor z = logits3();
  Tensor loss = cross_entropy(z, tensor_i64({-100, -100, -100}, {3}));
  EXPECT_TRUE(std::isnan(loss.item<double>()));
  loss.backward();
  expect_values(z.grad(), std::vector<double>(9, 0.0), 0);
}

TEST(NnCrossEntropy, MatchesCompositeForBatchedFloat32AndInt32Targets) {
  Tensor z = rnd({2, 3, 50}, 1, DType::f32) * 5.0;
  Tensor t = tensor_i64({0, 49, 7, 3, 11, 2}, {2, 3});
  Tensor ls = log_softmax(z, -1);
  std::vector<float> lv = ls.to_vector<float>();
  std::vector<int64_t> tv = t.to_vector<int64_t>();
  std::vector<double> want;
  double total = 0;
  for (size_t r = 0; r < 6; ++r) {
    want.push_back(-double(lv[r * 50 + size_t(tv[r])]));
    total += want.back();
  }
  expect_values(cross_entropy(z, t, -100, Reduction::none), want, 1e-5);
  expect_values(cross_entropy(z, cast(t, DType::i32)), {total / 6}, 1e-5);
  // Non-contiguous logits.
  Tensor zp = permute(clone(permute(z, {1, 0, 2})), {1, 0, 2});
  ASSERT_FALSE(zp.is_contiguous());
  expect_values(cross_entropy(zp, t, -100, Reduction::none), want, 1e-5);
}

TEST(NnCrossEntropy, Gradcheck) {
  Tensor z = rnd({4, 5}, 2);
  Tensor t = tensor_i64({1, -1, 4, 0}, {4});  // ignore_index -1 here
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    GradcheckResult res = gradcheck(
        [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], -1, r); }, {z, t});
    EXPECT_TRUE(res.ok) << res.message;
  }
}

TEST(NnCrossEntropy, DoubleBackward) {
  Tensor z = rnd({3, 4}, 3);
  Tensor t = tensor_i64({2, -100, 0}, {3});
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    Tensor seed = r == Reduction::none ? rnd({3}, 4) : rnd({}, 5);
    // d/dlogits and d/dseed of seed . d loss / d logits.
    auto fn = [&](const std::vector<Tensor>& in) {
      GradModeGuard on(true);
      Tensor loss = cross_entropy(in[0], in[1], -100, r);
      return grad({loss}, {in[0]}, {in[2]}, false, true)[0];
    };
    GradcheckResult res = gradcheck(fn, {z, t, seed});
    EXPECT_TRUE(res.ok) << res.message;
  }
}

TEST(NnCrossEntropy, Errors) {
  Tensor z = zeros({2, 3});
  std::string e = error_of([&] { cross_entropy(z, tensor_i64({0, 3}, {2})); });
  EXPECT_NE(e.find("[cross_entropy]"), std::string::npos) << e;
  EXPECT_NE(e.find("target 3"), std::string::npos) << e;
  e = error_of([&] { cross_entropy(z, tensor_i64({-5, 0}, {2})); });
  EXPECT_NE(e.find("target -5"), std::string::npos) << e;
  e = error_of([&] { cross_entropy(z, tensor_i64({0, 1, 2}, {3})); });
  EXPECT_NE(e.find("[cross_entropy] targets shape [3]"), std::string::npos) << e;
  e = error_of([&] { cross_entropy(z, zeros({2})); });
  EXPECT_NE(e.find("[cross_entropy] targets must be int64 or int32"), std::string::npos) << e;
  e = error_of([&] { cross_entropy(zeros({2, 3}, DType::i64), tensor_i64({0, 1}, {2})); });
  EXPECT_NE(e.find("[cross_entropy] logits must be floating-point"), std::string::npos) << e;
  e = error_of([&] { cross_entropy(scalar(1.0), tensor_i64({0}, {})); });
  EXPECT_NE(e.find("[cross_entropy]"), std::string::npos) << e;
}

}  // namespace
}  // namespace ember
