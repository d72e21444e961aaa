// Tests for matmul and linear: values against naive loops for every shape case
// (1-D promotion, broadcast batches, transposed and strided views, empty
// dimensions), every floating dtype, float64 gradient checks, and every
// argument error.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/matmul_kernels.h"
#include "ember/ember.h"

using namespace ember;

namespace {

std::vector<double> random_values(int64_t n, uint32_t seed, bool integers = false) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> i(-3, 3);
  std::vector<double> v(size_t(std::max<int64_t>(n, 0)));
  for (double& x : v) x = integers ? double(i(rng)) : u(rng);
  return v;
}

Tensor random_tensor(const Shape& shape, DType dtype = DType::f32, uint32_t seed = 1, bool integers = false) {
  return tensor(random_values(numel(shape), seed, integers), shape, dtype);
}

struct Dense {
  std::vector<double> v;
  Shape shape;
};

// NumPy matmul by definition, in double: promote vectors, broadcast batches, loop.
Dense naive_matmul(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  bool a_vec = sa.size() == 1, b_vec = sb.size() == 1;
  if (a_vec) sa.insert(sa.begin(), 1);
  if (b_vec) sb.push_back(1);
  int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "naive");
  Strides ca = broadcast_strides(ba, contiguous_strides(ba), batch);
  Strides cb = broadcast_strides(bb, contiguous_strides(bb), batch);
  int64_t nbatch = numel(batch);
  Dense out;
  out.v.assign(size_t(nbatch * m * n), 0.0);
  for (int64_t i = 0; i < nbatch; ++i) {
    int64_t r = i, ia = 0, ib = 0;
    for (size_t d = batch.size(); d-- > 0;) {
      ia += (r % batch[d]) * ca[d];
      ib += (r % batch[d]) * cb[d];
      r /= batch[d];
    }
    for (int64_t p = 0; p < m; ++p)
      for (int64_t q = 0; q < n; ++q) {
        double s = 0;
        for (int64_t t = 0; t < k; ++t) s += va[size_t((ia * m + p) * k + t)] * vb[size_t((ib * k + t) * n + q)];
        out.v[size_t((i * m + p) * n + q)] = s;
      }
  }
  out.shape = batch;
  if (!a_vec) out.shape.push_back(m);
  if (!b_vec) out.shape.push_back(n);
  return out;
}

void expect_matches(const Tensor& got, const Dense& want, double tol) {
  ASSERT_EQ(got.shape(), want.shape);
  std::vector<double> g = got.to_vector<double>();
  ASSERT_EQ(g.size(), want.v.size());
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], want.v[i], tol * (1 + std::abs(want.v[i]))) << "element " << i;
}

void check_case(const Shape& sa, const Shape& sb, const Shape& expected, DType dtype = DType::f32) {
  SCOPED_TRACE(shape_str(sa) + " @ " + shape_str(sb) + " " + dtype_name(dtype));
  Tensor a = random_tensor(sa, dtype, 11), b = random_tensor(sb, dtype, 12);
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), expected);
  EXPECT_EQ(c.dtype(), dtype);
  expect_matches(c, naive_matmul(a, b), dtype == DType::f64 ? 1e-12 : 1e-5);
}

uint64_t cpu_allocations() { return allocator_for(Device::cpu()).stats().allocations; }

template <typename F>
void expect_error(F&& f, const std::string& part) {
  try {
    f();
    FAIL() << "no error thrown, expected one containing: " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& in) {
  GradcheckResult r = gradcheck(fn, in);
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace

TEST(Matmul, HandComputed2D) {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor({5, 6, 7, 8}, {2, 2});
  EXPECT_EQ(matmul(a, b).to_vector<float>(), (std::vector<float>{19, 22, 43, 50}));
  Tensor v = tensor({1, 2, 3}, {3}, DType::f64);
  EXPECT_EQ(matmul(v, v).shape(), Shape{});
  EXPECT_EQ(matmul(v, v).item<double>(), 14.0);
}

TEST(Matmul, ShapeCasesMatchNaiveLoops) {
  for (DType dt : {DType::f32, DType::f64}) {
    check_case({3, 4}, {4, 5}, {3, 5}, dt);
    check_case({4}, {4, 5}, {5}, dt);              // vector @ matrix
    check_case({3, 4}, {4}, {3}, dt);              // matrix @ vector
    check_case({4}, {4}, {}, dt);                  // dot
    check_case({4}, {2, 4, 5}, {2, 5}, dt);        // vector @ batch
    check_case({2, 3, 4}, {4}, {2, 3}, dt);        // batch @ vector
    check_case({2, 3, 4}, {2, 4, 5}, {2, 3, 5}, dt);
    check_case({2, 3, 4, 5}, {2, 3, 5, 6}, {2, 3, 4, 6}, dt);  // [B,H,T,D] @ [B,H,D,S]
    check_case({2, 3, 4}, {4, 5}, {2, 3, 5}, dt);              // [B,T,C] @ [C,N]: one folded GEMM
    check_case({4, 1, 3, 5}, {2, 5, 6}, {4, 2, 3, 6}, dt);     // both batches broadcast
    check_case({3, 4}, {2, 4, 5}, {2, 3, 5}, dt);              // left matrix shared by the batch
    check_case({1, 3, 4}, {2, 4, 5}, {2, 3, 5}, dt);
    check_case({2, 1, 4}, {4, 7}, {2, 1, 7}, dt);
  }
}

TEST(Matmul, TransposedViewsNeedNoCopy) {
  Tensor x = random_tensor({5, 3}, DType::f32, 3);  // a = xᵀ is [3, 5], column-major
  Tensor y = random_tensor({4, 5}, DType::f32, 4);  // b = yᵀ is [5, 4]
  Tensor a = transpose(x, 0, 1), b = transpose(y, 0, 1);
  for (auto [l, r] : {std::pair{a, b}, std::pair{a, contiguous(b)}, std::pair{contiguous(a), b}}) {
    uint64_t before = cpu_allocations();
    Tensor c = matmul(l, r);
    EXPECT_EQ(cpu_allocations() - before, 1u) << "only the output should be allocated";
    expect_matches(c, naive_matmul(contiguous(l), contiguous(r)), 1e-5);
  }
  // A block inside a wider matrix (non-zero offset, leading dimension 8).
  Tensor wide = random_tensor({5, 8}, DType::f32, 8);
  Tensor block = narrow(wide, 1, 2, 5);  // [5, 5]
  uint64_t before_block = cpu_allocations();
  Tensor cb = matmul(a, block);
  EXPECT_EQ(cpu_allocations() - before_block, 1u);
  expect_matches(cb, naive_matmul(contiguous(a), contiguous(block)), 1e-5);
  // Attention layout: [B, T, H, D] permuted to [B, H, T, D] has row stride H*D, still a GEMM operand.
  Tensor q = permute(random_tensor({2, 6, 3, 4}, DType::f32, 5), {0, 2, 1, 3});
  Tensor k = permute(random_tensor({2, 6, 3, 4}, DType::f32, 6), {0, 2, 3, 1});  // Kᵀ: [B, H, D, T]
  uint64_t before = cpu_allocations();
  Tensor s = matmul(q, k);
  EXPECT_EQ(cpu_allocations() - before, 1u);
  EXPECT_EQ(s.shape(), (Shape{2, 3, 6, 6}));
  expect_matches(s, naive_matmul(contiguous(q), contiguous(k)), 1e-5);
}

TEST(Matmul, LayoutsThatAreNotGemmOperandsAreCopied) {
  Tensor big = random_tensor({6, 8}, DType::f64, 7);
  Tensor a = slice(slice(big, 0, 0, 6, 2), 1, 0, 8, 2);           // [3, 4], strides (16, 2)
  Tensor b = broadcast_to(random_tensor({1, 5}, DType::f64, 8), {4, 5});  // row stride 0
  expect_matches(matmul(a, b), naive_matmul(contiguous(a), contiguous(b)), 1e-12);
  Tensor bt = transpose(slice(random_tensor({5, 8}, DType::f64, 9), 1, 0, 8, 2), 0, 1);  // [4, 5], strides (2, 8)
  expect_matches(matmul(a, bt), naive_matmul(contiguous(a), contiguous(bt)), 1e-12);
}

TEST(Matmul, EverySixteenBitDtypeRoundsOnce) {
  for (DType dt : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    // Small integers: every product and sum is exact in float, so the result is exact too.
    Tensor a = random_tensor({2, 3, 8}, dt, 21, true), b = random_tensor({8, 5}, dt, 22, true);
    Tensor c = matmul(a, b);
    EXPECT_EQ(c.dtype(), dt);
    expect_matches(c, naive_matmul(a, b), 0.0);
    // Random values: within half an ulp of the exact product of the rounded inputs, plus the
    // float32 accumulation error (bounded by K * 2^-24 * sum |terms| <= 33 * 2^-24 * 33).
    int precision = dt == DType::bf16 ? 8 : 11;  // significand bits
    Tensor x = random_tensor({3, 4, 33}, dt, 23), y = transpose(random_tensor({3, 6, 33}, dt, 24), 1, 2);
    Dense want = naive_matmul(x, contiguous(y));
    std::vector<double> got = matmul(x, y).to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) {
      int exponent;
      std::frexp(want.v[i], &exponent);  // |v| in [2^(e-1), 2^e): ulp = 2^(e - precision)
      EXPECT_LE(std::abs(got[i] - want.v[i]), std::ldexp(0.5, exponent - precision) + 1e-4) << i;
    }
  }
}

TEST(Matmul, OneDnnSixteenBitPathAgreesWithConvertPath) {
  if (std::string(cpu::lowp_gemm_impl(DType::bf16, 64, 48, 40)).empty())
    GTEST_SKIP() << "oneDNN has no native bf16 matmul on this CPU; the convert path is used and tested above";
  for (DType dt : {DType::bf16, DType::f16}) {
    if (std::string(cpu::lowp_gemm_impl(dt, 64, 48, 40)).empty()) continue;
    Tensor a = random_tensor({2, 64, 40}, dt, 31), w = random_tensor({48, 40}, dt, 32);
    Tensor bias = random_tensor({48}, dt, 33);
    Tensor fast = linear(a, w, bias), fast_mm = matmul(a, transpose(w, 0, 1));
    cpu::set_lowp_gemm_enabled(false);
    Tensor slow = linear(a, w, bias), slow_mm = matmul(a, transpose(w, 0, 1));
    cpu::set_lowp_gemm_enabled(true);
    double ulp = dt == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -10);
    // Both accumulate in float and round once; only the summation order differs.
    std::vector<double> f = fast.to_vector<double>(), s = slow.to_vector<double>();
    std::vector<double> fm = fast_mm.to_vector<double>(), sm = slow_mm.to_vector<double>();
    for (size_t i = 0; i < f.size(); ++i) {
      EXPECT_LE(std::abs(f[i] - s[i]), ulp * std::abs(s[i]) + 1e-6) << i;
      EXPECT_LE(std::abs(fm[i] - sm[i]), ulp * std::abs(sm[i]) + 1e-6) << i;
    }
  }
}

TEST(Matmul, EmptyDimensions) {
  EXPECT_EQ(matmul(random_tensor({0, 3}), random_tensor({3, 4})).shape(), (Shape{0, 4}));
  EXPECT_EQ(matmul(random_tensor({2, 3}), random_tensor({3, 0})).shape(), (Shape{2, 0}));
  EXPECT_EQ(matmul(random_tensor({0, 2, 3}), random_tensor({3, 4})).shape(), (Shape{0, 2, 4}));
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    Tensor c = matmul(random_tensor({2, 2, 0}, dt), random_tensor({0, 3}, dt));  // k = 0: an empty sum
    EXPECT_EQ(c.shape(), (Shape{2, 2, 3}));
    for (double v : c.to_vector<double>()) EXPECT_EQ(v, 0.0);
    EXPECT_EQ(matmul(random_tensor({0}, dt), random_tensor({0}, dt)).item<double>(), 0.0);
  }
  Tensor y = linear(random_tensor({2, 0}), random_tensor({3, 0}), tensor({1, 2, 3}, {3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
}

TEST(Matmul, BatchThreadingPoliciesAgree) {
  Tensor a = random_tensor({8, 16, 12}, DType::f32, 41), b = random_tensor({8, 12, 10}, DType::f32, 42);
  Tensor c1 = Tensor::empty({8, 16, 10}), c2 = Tensor::empty({8, 16, 10});
  cpu::matmul(a, b, c1, Tensor(), cpu::BatchThreads::over_batch);
  cpu::matmul(a, b, c2, Tensor(), cpu::BatchThreads::inside_gemm);
  Dense want = naive_matmul(a, b);
  expect_matches(c1, want, 1e-5);
  expect_matches(c2, want, 1e-5);
}

TEST(Matmul, Errors) {
  Tensor m = random_tensor({2, 3});
  expect_error([&] { matmul(scalar(1.0), m); }, "[matmul] both operands need at least one dimension, got shapes []");
  expect_error([&] { matmul(m, random_tensor({4, 5})); }, "[matmul] shapes [2, 3] and [4, 5] do not align (3 != 4)");
  expect_error([&] { matmul(random_tensor({3}), random_tensor({4})); }, "do not align (3 != 4)");
  expect_error([&] { matmul(m, random_tensor({3, 2}, DType::f64)); },
               "[matmul] operands must have one dtype, got float32 and float64 (shapes [2, 3] and [3, 2])");
  expect_error([&] { matmul(tensor_i64({1, 2}, {1, 2}), tensor_i64({1, 2}, {2, 1})); },
               "[matmul] expects floating-point operands, got int64");
  expect_error([&] { matmul(random_tensor({2, 2, 3}), random_tensor({3, 3, 4})); },
               "[matmul] batch dimensions of shapes [2, 2, 3] and [3, 3, 4] do not broadcast ([2] vs [3])");
  expect_error([&] { matmul(Tensor(), m); }, "[matmul]");
}

TEST(Linear, MatchesNaiveWithAndWithoutBias) {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = random_tensor({2, 3, 5}, dt, 51), w = random_tensor({4, 5}, dt, 52), bias = random_tensor({4}, dt, 53);
    Dense want = naive_matmul(x, contiguous(transpose(w, 0, 1)));
    double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    uint64_t before = cpu_allocations();
    Tensor y = linear(x, w);
    EXPECT_EQ(cpu_allocations() - before, 1u) << "the weight is read transposed, not copied";
    expect_matches(y, want, tol);
    std::vector<double> bv = bias.to_vector<double>();
    for (size_t i = 0; i < want.v.size(); ++i) want.v[i] += bv[i % 4];
    expect_matches(linear(x, w, bias), want, tol);
    // A 1-D input, a transposed-view weight and a non-contiguous input.
    Tensor x1 = random_tensor({5}, dt, 54);
    Dense want1 = naive_matmul(x1, contiguous(transpose(w, 0, 1)));
    for (size_t i = 0; i < 4; ++i) want1.v[i] += bv[i];
    expect_matches(linear(x1, w, bias), want1, tol);
    Tensor wt = transpose(contiguous(transpose(w, 0, 1)), 0, 1);  // same values, column-major
    expect_matches(linear(transpose(transpose(x, 0, 1), 0, 1), wt), naive_matmul(x, contiguous(transpose(w, 0, 1))),
                   tol);
    Tensor xs = transpose(random_tensor({3, 2, 5}, dt, 55), 0, 1);  // [2, 3, 5], rows not foldable
    expect_matches(linear(xs, w), naive_matmul(contiguous(xs), contiguous(transpose(w, 0, 1))), tol);
  }
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor x = random_tensor({3, 4}, dt, 56, true), w = random_tensor({2, 4}, dt, 57, true);
    Tensor bias = tensor({0.5, -1.5}, {2}, dt);
    Dense want = naive_matmul(x, contiguous(transpose(w, 0, 1)));
    for (size_t i = 0; i < want.v.size(); ++i) want.v[i] += i % 2 ? -1.5 : 0.5;
    expect_matches(linear(x, w, bias), want, 0.0);
  }
}

TEST(Linear, Errors) {
  Tensor x = random_tensor({2, 3}), w = random_tensor({4, 3});
  expect_error([&] { linear(x, random_tensor({4, 5})); },
               "[linear] input of shape [2, 3] does not match weight of shape [4, 5] (3 != 5)");
  expect_error([&] { linear(x, random_tensor({3})); }, "[linear] expects an input of at least one dimension and a 2-D");
  expect_error([&] { linear(scalar(1.0), w); }, "[linear] expects an input of at least one dimension");
  expect_error([&] { linear(x, w, random_tensor({3})); },
               "[linear] bias of shape [3] does not match weight of shape [4, 3] (expected [4])");
  expect_error([&] { linear(x, random_tensor({4, 3}, DType::f64)); }, "[linear] input, weight and bias must have one dtype");
  expect_error([&] { linear(x, w, random_tensor({4}, DType::bf16)); }, "got float32 and bfloat16");
  expect_error([&] { linear(tensor_i64({1, 2, 3}, {1, 3}), tensor_i64({1, 2, 3}, {1, 3})); },
               "[linear] expects floating-point tensors, got int64");
  expect_error([&] { linear(x, Tensor()); }, "[linear]");
}

TEST(MatmulGrad, Gradcheck2DAndBatched) {
  auto mm = [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); };
  expect_gradcheck(mm, {random_tensor({3, 4}, DType::f64, 61), random_tensor({4, 2}, DType::f64, 62)});
  expect_gradcheck(mm, {random_tensor({2, 1, 3, 4}, DType::f64, 63), random_tensor({3, 4, 2}, DType::f64, 64)});
  expect_gradcheck(mm, {random_tensor({2, 3, 4}, DType::f64, 65), random_tensor({4, 2}, DType::f64, 66)});
  expect_gradcheck(mm, {random_tensor({3, 4}, DType::f64, 67), random_tensor({2, 4, 2}, DType::f64, 68)});
  // Transposed inputs: the gradient flows back through the views.
  auto mmt = [](const std::vector<Tensor>& t) { return matmul(transpose(t[0], -1, -2), transpose(t[1], -1, -2)); };
  expect_gradcheck(mmt, {random_tensor({2, 4, 3}, DType::f64, 69), random_tensor({2, 5, 4}, DType::f64, 70)});
  // A transposed left operand with a shared weight (the folded dB path reshapes a copy).
  auto mmf = [](const std::vector<Tensor>& t) { return matmul(transpose(t[0], 0, 1), t[1]); };
  expect_gradcheck(mmf, {random_tensor({3, 2, 4}, DType::f64, 71), random_tensor({4, 2}, DType::f64, 72)});
}

TEST(MatmulGrad, GradcheckOneDimensional) {
  auto mm = [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); };
  expect_gradcheck(mm, {random_tensor({4}, DType::f64, 81), random_tensor({4, 3}, DType::f64, 82)});
  expect_gradcheck(mm, {random_tensor({3, 4}, DType::f64, 83), random_tensor({4}, DType::f64, 84)});
  expect_gradcheck(mm, {random_tensor({4}, DType::f64, 85), random_tensor({4}, DType::f64, 86)});
  expect_gradcheck(mm, {random_tensor({4}, DType::f64, 87), random_tensor({2, 4, 3}, DType::f64, 88)});
  expect_gradcheck(mm, {random_tensor({2, 3, 4}, DType::f64, 89), random_tensor({4}, DType::f64, 90)});
}

TEST(MatmulGrad, SecondOrder) {
  // d/dA of <dL/dA, u> where L = sum((A B)^2): checks that the vjp is itself differentiable.
  auto fn = [](const std::vector<Tensor>& t) {
    GradModeGuard recording(true);  // gradcheck evaluates fn under no_grad for its differences
    Tensor a = t[0], b = t[1];
    Tensor y = matmul(a, b);
    std::vector<Tensor> g = grad({sum(y * y)}, {a, b}, {}, true, true);
    return g[0] + 0.0 * sum(g[1]);
  };
  expect_gradcheck(fn, {random_tensor({2, 3}, DType::f64, 91), random_tensor({3, 2}, DType::f64, 92)});
}

TEST(LinearGrad, GradcheckWithAndWithoutBias) {
  auto lin = [](const std::vector<Tensor>& t) { return linear(t[0], t[1]); };
  auto linb = [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); };
  Tensor w = random_tensor({3, 4}, DType::f64, 101), b = random_tensor({3}, DType::f64, 102);
  expect_gradcheck(lin, {random_tensor({2, 4}, DType::f64, 103), w});
  expect_gradcheck(linb, {random_tensor({2, 2, 4}, DType::f64, 104), w, b});
  expect_gradcheck(linb, {random_tensor({4}, DType::f64, 105), w, b});
  // Non-contiguous input and a column-major weight view.
  auto lint = [](const std::vector<Tensor>& t) { return linear(transpose(t[0], 0, 1), transpose(t[1], 0, 1), t[2]); };
  expect_gradcheck(lint, {random_tensor({3, 2, 4}, DType::f64, 106), random_tensor({4, 3}, DType::f64, 107), b});
}
