// Tests for sort, argsort, topk and cumsum: values against PyTorch, stability
// with ties, NaN ordering, bf16, float64 gradchecks, and argument errors.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "index_test_util.h"

using namespace ember;

namespace {
Tensor rnd(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, DType::f64, Device::cpu(), &gen);
}
const double kNaN = std::nan("");
}  // namespace

TEST(SortOps, SortIsStableWithTiesAndNaNLast) {
  Tensor x = tensor({3, 1, 3, 2, 1, kNaN, 3}, {7});
  ValuesIndices a = sort(x);
  EXPECT_EQ(ivec(a.indices), (std::vector<int64_t>{1, 4, 3, 0, 2, 6, 5}));  // as torch.sort(stable=True)
  std::vector<float> av = fvec(a.values);
  EXPECT_EQ(std::vector<float>(av.begin(), av.end() - 1), (std::vector<float>{1, 1, 2, 3, 3, 3}));
  EXPECT_TRUE(std::isnan(av.back()));
  ValuesIndices d = sort(x, 0, true);
  EXPECT_EQ(ivec(d.indices), (std::vector<int64_t>{5, 0, 2, 6, 3, 1, 4}));
  EXPECT_TRUE(std::isnan(fvec(d.values)[0]));
  EXPECT_EQ(ivec(argsort(x, -1, true)), ivec(d.indices));
}

TEST(SortOps, SortAlongAnyAxisAndDtype) {
  Tensor x = tensor({5, 1, 4, 2, 8, 0}, {3, 2});  // columns [5, 4, 8] and [1, 2, 0]
  ValuesIndices s = sort(x, 0);
  EXPECT_EQ(fvec(s.values), (std::vector<float>{4, 0, 5, 1, 8, 2}));
  EXPECT_EQ(ivec(s.indices), (std::vector<int64_t>{1, 2, 0, 0, 2, 1}));
  Tensor xi = cast(x, DType::i32);
  ValuesIndices si = sort(xi, 1, true);
  EXPECT_EQ(si.values.dtype(), DType::i32);
  EXPECT_EQ(si.values.to_vector<int32_t>(), (std::vector<int32_t>{5, 1, 4, 2, 8, 0}));
  EXPECT_EQ(ivec(argsort(transpose(x, 0, 1), 1)), (std::vector<int64_t>{1, 0, 2, 2, 0, 1}));
  ValuesIndices z = sort(scalar(2.5));
  EXPECT_EQ(z.values.shape(), Shape{});
  EXPECT_EQ(z.indices.item<int64_t>(), 0);
  EXPECT_EQ(sort(zeros({2, 0}), 1).values.shape(), (Shape{2, 0}));
}

TEST(SortOps, TopkValues) {
  Tensor x = tensor({3, 1, 3, 2, 1, kNaN, 3}, {7});
  ValuesIndices t = topk(x, 3);
  EXPECT_TRUE(std::isnan(fvec(t.values)[0]));
  EXPECT_EQ(ivec(t.indices), (std::vector<int64_t>{5, 0, 2}));  // ties keep their original order
  ValuesIndices s = topk(x, 2, -1, false);
  EXPECT_EQ(fvec(s.values), (std::vector<float>{1, 1}));
  EXPECT_EQ(ivec(s.indices), (std::vector<int64_t>{1, 4}));
  Tensor m = tensor({1, 9, 3, 7, 2, 8}, {2, 3});
  ValuesIndices c = topk(m, 1, 0);
  EXPECT_EQ(fvec(c.values), (std::vector<float>{7, 9, 8}));
  EXPECT_EQ(ivec(c.indices), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(topk(m, 0).values.shape(), (Shape{2, 0}));
  EXPECT_EQ(ivec(topk(m, 3).indices), (std::vector<int64_t>{1, 2, 0, 2, 0, 1}));
}

TEST(SortOps, TopkBf16) {
  // bf16 keeps 8 bits of mantissa: 1.001 rounds to 1.0 and ties with the 1.0 after it.
  Tensor x = cast(tensor({0.5, 1.0, -3.0, 1.001, 2.0, 1.0}, {2, 3}), DType::bf16);
  ValuesIndices t = topk(x, 2, 1);
  EXPECT_EQ(t.values.dtype(), DType::bf16);
  EXPECT_EQ(fvec(t.values), (std::vector<float>{1.0f, 0.5f, 2.0f, 1.0f}));
  EXPECT_EQ(ivec(t.indices), (std::vector<int64_t>{1, 0, 1, 0}));
  ValuesIndices lo = topk(x, 1, 1, false);
  EXPECT_EQ(fvec(lo.values), (std::vector<float>{-3.0f, 1.0f}));
  EXPECT_EQ(ivec(lo.indices), (std::vector<int64_t>{2, 0}));
}

TEST(SortOps, TopkManyRowsMatchesReference) {
  // Exercises the parallel path and both the partial-sort and full-sort branches.
  Generator gen(21);
  const int64_t R = 48, N = 700;
  Tensor x = randint(0, 50, {R, N}, Device::cpu(), &gen);  // many ties
  Tensor xf = cast(x, DType::f32);
  std::vector<float> v = fvec(xf);
  for (int64_t k : {5, 400}) {
    ValuesIndices t = topk(xf, k, 1);
    std::vector<int64_t> got = ivec(t.indices);
    for (int64_t r = 0; r < R; ++r) {
      std::vector<int64_t> order(static_cast<size_t>(N));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return v[size_t(r * N + a)] > v[size_t(r * N + b)]; });
      for (int64_t j = 0; j < k; ++j) ASSERT_EQ(got[size_t(r * k + j)], order[size_t(j)]) << "row " << r << " k " << k;
    }
  }
}

TEST(SortOps, SortTopkGradcheck) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return sort(v[0], 1).values; },
                   (std::vector<Tensor>{rnd({3, 5}, 1)}));
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return sort(v[0], 0, true).values * v[0]; },
                   (std::vector<Tensor>{rnd({4, 3}, 2)}));
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return topk(v[0], 2, -1).values; },
                   (std::vector<Tensor>{rnd({2, 3, 5}, 3)}));
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return topk(v[0], 3, 1, false).values; },
                   (std::vector<Tensor>{rnd({2, 4, 3}, 4)}));
}

TEST(SortOps, SortErrors) {
  Tensor x = zeros({2, 3});
  EXPECT_EMBER_ERROR(topk(x, 4), "[topk]", "k = 4", "[0, 3]");
  EXPECT_EMBER_ERROR(topk(x, -1), "[topk]", "non-negative", "-1");
  EXPECT_EMBER_ERROR(topk(x, 1, 2), "[topk]", "axis 2");
  EXPECT_EMBER_ERROR(sort(x, -3), "[sort]", "axis -3");
  EXPECT_EMBER_ERROR(argsort(x, 5), "[argsort]", "axis 5");
  EXPECT_EMBER_ERROR(topk(scalar(1), 2), "[topk]", "k = 2");
  EXPECT_EMBER_ERROR(sort(Tensor()), "[sort]", "undefined");
}

TEST(SortOps, CumsumValues) {
  Tensor x = reshape(arange(0.0, 12.0, 1.0, DType::f32), {3, 4});
  EXPECT_EQ(fvec(cumsum(x, 0)), (std::vector<float>{0, 1, 2, 3, 4, 6, 8, 10, 12, 15, 18, 21}));
  EXPECT_EQ(fvec(cumsum(x, -1)), (std::vector<float>{0, 1, 3, 6, 4, 9, 15, 22, 8, 17, 27, 38}));
  EXPECT_EQ(fvec(cumsum(transpose(x, 0, 1), 1)), (std::vector<float>{0, 4, 12, 1, 6, 15, 2, 8, 18, 3, 10, 21}));
  Tensor xi = cumsum(cast(tensor_i64({1, 2, 3}, {3}), DType::i32), 0);
  EXPECT_EQ(xi.dtype(), DType::i64);
  EXPECT_EQ(ivec(xi), (std::vector<int64_t>{1, 3, 6}));
  EXPECT_EQ(ivec(cumsum(tensor({1, 0, 1}, {3}, DType::b8), 0)), (std::vector<int64_t>{1, 1, 2}));
  Tensor bf = cumsum(tensor({0.5, 0.25, 0.25}, {3}, DType::bf16), 0);
  EXPECT_EQ(bf.dtype(), DType::bf16);
  EXPECT_EQ(fvec(bf), (std::vector<float>{0.5f, 0.75f, 1.0f}));
  EXPECT_EQ(cumsum(scalar(3), 0).item<double>(), 3.0);
  // Accumulated in double: in float, 1e8 + 1 rounds back to 1e8 every step.
  Tensor big = cumsum(tensor({1e8, 1, 1, 1, 1, 1, 1, 1, 1}, {9}), 0);
  EXPECT_EQ(fvec(big).back(), 100000008.0f);
}

TEST(SortOps, CumsumGradcheckAndErrors) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return cumsum(v[0], 1); }, (std::vector<Tensor>{rnd({3, 4}, 5)}));
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return cumsum(v[0] * v[0], 0); },
                   (std::vector<Tensor>{rnd({3, 2, 2}, 6)}));
  EXPECT_EMBER_ERROR(cumsum(zeros({2, 3}), 2), "[cumsum]", "axis 2");
  EXPECT_EMBER_ERROR(cumsum(Tensor(), 0), "[cumsum]", "undefined");
}
