// Tests for linear_cross_entropy (a head and its loss without the logits): the
// fused float32 primitive against the float64 composition
// cross_entropy(linear(x, W), t) for the loss and both gradients, over several
// row blocks (the kernel called with small blocks), ignored targets, sum and
// mean, logits far apart, no-grad evaluation, the composite fallback for other
// dtypes, a compiled training step, and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ember/backend/cpu/linear_cross_entropy_kernels.h"
#include "ember/ember.h"
#include "ember/graph/compile.h"
#include "test_util.h"

namespace ember {
namespace {

Tensor rnd(const Shape& shape, uint64_t seed, double scale = 1.0) {
  Generator gen(seed);
  return randn(shape, DType::f32, Device::cpu(), &gen) * scale;
}

// Targets in [0, V) with every fifth one ignored (-100).
Tensor make_targets(const Shape& shape, int64_t V, uint64_t seed) {
  std::vector<int64_t> t(size_t(numel(shape)));
  uint64_t s = seed;
  for (size_t i = 0; i < t.size(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    t[i] = i % 5 == 3 ? -100 : int64_t((s >> 33) % uint64_t(V));
  }
  return tensor_i64(t, shape);
}

void expect_close(const Tensor& got, const Tensor& want, double tol, const char* what) {
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  ASSERT_EQ(g.size(), w.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - w[i]));
  EXPECT_LE(worst, tol) << what;
}

struct Reference {
  Tensor loss, dx, dw;
};

// The composition in float64: the reference the fused float32 op must meet.
Reference composite(const Tensor& x, const Tensor& w, const Tensor& t, Reduction r) {
  Tensor x64 = cast(x, DType::f64).detach().requires_grad_();
  Tensor w64 = cast(w, DType::f64).detach().requires_grad_();
  Tensor loss = cross_entropy(linear(x64, w64), t, -100, r);
  loss.backward();
  return {loss, x64.grad(), w64.grad()};
}

void check_against_composite(const Shape& xs, int64_t V, Reduction r, double scale, uint64_t seed) {
  const int64_t C = xs.back();
  Tensor x = rnd(xs, seed, scale).requires_grad_();
  Tensor w = rnd({V, C}, seed + 1, 0.5).requires_grad_();
  Shape ts(xs.begin(), xs.end() - 1);
  Tensor t = make_targets(ts, V, seed + 2);
  Tensor loss = linear_cross_entropy(x, w, t, -100, r);
  EXPECT_EQ(loss.ndim(), 0);
  loss.backward();
  Reference ref = composite(x, w, t, r);
  const double mag = std::max(1.0, std::abs(ref.loss.item<double>()));
  EXPECT_NEAR(loss.item<double>(), ref.loss.item<double>(), 2e-6 * mag);
  expect_close(x.grad(), ref.dx, 2e-5 * scale, "dx");
  expect_close(w.grad(), ref.dw, 2e-5 * scale * (r == Reduction::sum ? double(t.numel()) : 1.0), "dweight");
}

TEST(LinearCrossEntropy, MeanMatchesComposite) { check_against_composite({3, 50, 16}, 37, Reduction::mean, 1.0, 11); }

TEST(LinearCrossEntropy, SumMatchesComposite) { check_against_composite({40, 8}, 29, Reduction::sum, 1.0, 21); }

// Logits spread over hundreds: a target far below the row's maximum has an
// exponential that underflows, and its loss must still be finite and right.
TEST(LinearCrossEntropy, FarApartLogitsStayFinite) {
  check_against_composite({70, 32}, 300, Reduction::mean, 12.0, 31);
}

// Many row blocks, the last one partial: the weight gradient accumulates
// across blocks and matches one block over all rows.
TEST(LinearCrossEntropy, KernelBlocksAgreeWithOneBlock) {
  const int64_t N = 45, C = 24, V = 53;
  Tensor x = rnd({N, C}, 41), w = rnd({V, C}, 42), t = make_targets({N}, V, 43);
  auto run = [&](int64_t block) {
    Tensor rows = Tensor::empty({N}, DType::f32, Device::cpu());
    Tensor dx = Tensor::empty({N, C}, DType::f32, Device::cpu());
    Tensor dw = Tensor::empty({V, C}, DType::f32, Device::cpu());
    int64_t count = cpu::linear_cross_entropy("test", x, w, t, -100, /*mean=*/true, block, rows, dx, dw);
    EXPECT_EQ(count, N - 9);  // positions 3, 8, ..., 43 are ignored
    return std::vector<Tensor>{rows, dx, dw};
  };
  std::vector<Tensor> one = run(N), blocks = run(7);
  expect_close(blocks[0], one[0], 1e-5, "row losses");  // products of other shapes round differently
  expect_close(blocks[1], one[1], 1e-5, "dx");
  expect_close(blocks[2], one[2], 1e-5, "dweight");
  EXPECT_EQ(one[0].to_vector<float>()[3], 0.0f);  // an ignored row adds no loss
}

TEST(LinearCrossEntropy, AllIgnoredGivesNanLossAndZeroGradients) {
  Tensor x = rnd({4, 8}, 51).requires_grad_(), w = rnd({10, 8}, 52).requires_grad_();
  Tensor loss = linear_cross_entropy(x, w, tensor_i64({-1, -1, -1, -1}, {4}), -1);
  EXPECT_TRUE(std::isnan(loss.item<float>()));  // 0 / 0, as PyTorch's mean
  loss.backward();
  for (float v : x.grad().to_vector<float>()) EXPECT_EQ(v, 0.0f);
  for (float v : w.grad().to_vector<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(LinearCrossEntropy, NoGradEvaluationMatchesAndRecordsNothing) {
  Tensor x = rnd({6, 8}, 61), w = rnd({10, 8}, 62).requires_grad_();
  Tensor t = make_targets({6}, 10, 63);
  Tensor want = cross_entropy(linear(x, w.detach()), t);
  {
    NoGradGuard no_grad;
    Tensor loss = linear_cross_entropy(x, w, t);
    EXPECT_NEAR(loss.item<float>(), want.item<float>(), 1e-6);
    EXPECT_FALSE(loss.requires_grad());
  }
}

// float64 and reduction none take the composition.
TEST(LinearCrossEntropy, OtherDtypesAndReductionNoneUseTheComposition) {
  Tensor x = cast(rnd({5, 4}, 71), DType::f64), w = cast(rnd({6, 4}, 72), DType::f64);
  Tensor t = make_targets({5}, 6, 73);
  Tensor none = linear_cross_entropy(x, w, t, -100, Reduction::none);
  EXPECT_EQ(none.shape(), (Shape{5}));
  EXPECT_NEAR(linear_cross_entropy(x, w, t).item<double>(), cross_entropy(linear(x, w), t).item<double>(), 1e-14);
}

// A compiled step (loss and backward traced into one graph) gives the eager
// loss and gradients, and the graph holds the fused primitive.
TEST(LinearCrossEntropy, CompiledStepMatchesEager) {
  Tensor w = rnd({40, 16}, 81).requires_grad_();
  Tensor x = rnd({2, 30, 16}, 82);
  Tensor t = make_targets({2, 30}, 40, 83);
  auto step = [&](const std::vector<Tensor>& in) {
    Tensor loss = linear_cross_entropy(in[0], w, in[1]);
    loss.backward();
    return std::vector<Tensor>{loss};
  };
  Tensor eager = step({x, t})[0];
  std::vector<float> eager_dw = w.grad().to_vector<float>();
  w.set_grad(Tensor());
  CompiledFunction compiled = compile(step);
  Tensor got = compiled({x, t})[0];
  EXPECT_EQ(got.item<float>(), eager.item<float>());
  EXPECT_EQ(w.grad().to_vector<float>(), eager_dw);
  ASSERT_NE(compiled.last_graph(), nullptr);
  EXPECT_EQ(compiled.last_graph()->node_count("linear_cross_entropy"), 1);
}

TEST(LinearCrossEntropy, BadArgumentsNameTheOp) {
  Tensor x = rnd({3, 4}, 91), w = rnd({5, 4}, 92);
  EXPECT_ERROR(linear_cross_entropy(x, w, tensor_i64({0, 5, 1}, {3})),
               "[linear_cross_entropy] target 5 at position 1 is out of range [0, 5)");
  EXPECT_ERROR(linear_cross_entropy(x, rnd({5, 3}, 93), tensor_i64({0, 1, 1}, {3})),
               "[linear_cross_entropy] weight must be [V, 4]");
  EXPECT_ERROR(linear_cross_entropy(x, w, tensor_i64({0, 1}, {2})), "[linear_cross_entropy] targets shape [2]");
  EXPECT_ERROR(linear_cross_entropy(x, w, Tensor()), "[linear_cross_entropy] x, weight or targets is an undefined");
}

}  // namespace
}  // namespace ember
