// Tests for the elementwise ops (ember/ops/elementwise.h): values of every unary
// and binary op against std:: in each dtype, NaN/inf rules, broadcasting over
// strided views, type promotion, float64 gradient checks, and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "ember/ember.h"
#include "test_util.h"

using namespace ember;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Values of `t` read as if broadcast to `out` (row-major order).
std::vector<double> broadcast_values(const Tensor& t, const Shape& out) {
  std::vector<double> v = t.to_vector<double>();
  Strides s = broadcast_strides(t.shape(), contiguous_strides(t.shape()), out);
  std::vector<double> r(size_t(numel(out)));
  for (int64_t n = 0; n < numel(out); ++n) {
    int64_t rem = n, off = 0;
    for (size_t d = out.size(); d-- > 0;) {
      off += (rem % out[d]) * s[d];
      rem /= out[d];
    }
    r[size_t(n)] = v[size_t(off)];
  }
  return r;
}

void expect_values(const Tensor& t, const std::vector<double>& want, double rtol, double atol = 0) {
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << "element " << i << ": got " << got[i] << ", want nan";
    } else if (std::isinf(want[i])) {
      EXPECT_EQ(got[i], want[i]) << "element " << i;
    } else {
      EXPECT_NEAR(got[i], want[i], atol + rtol * std::abs(want[i])) << "element " << i;
    }
  }
}

void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& in,
                      double atol = 1e-6, double rtol = 1e-4) {
  GradcheckResult r = gradcheck(fn, in, 1e-6, atol, rtol);
  EXPECT_TRUE(r.ok) << r.message;
}

Tensor randn64(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, DType::f64, Device::cpu(), &g);
}
Tensor uniform64(const Shape& s, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  return uniform(s, lo, hi, DType::f64, Device::cpu(), &g);
}

struct UnaryCase {
  UnaryOp op;
  std::function<double(double)> ref;
  double lo, hi;  // input domain
};

double gelu_ref(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh_ref(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  return {
      {UnaryOp::neg, [](double x) { return -x; }, -3, 3},
      {UnaryOp::abs, [](double x) { return std::abs(x); }, -3, 3},
      {UnaryOp::exp, [](double x) { return std::exp(x); }, -5, 5},
      {UnaryOp::log, [](double x) { return std::log(x); }, 0.01, 10},
      {UnaryOp::sqrt, [](double x) { return std::sqrt(x); }, 0, 10},
      {UnaryOp::rsqrt, [](double x) { return 1 / std::sqrt(x); }, 0.01, 10},
      {UnaryOp::tanh, [](double x) { return std::tanh(x); }, -5, 5},
      {UnaryOp::sigmoid, sigmoid_ref, -10, 10},
      {UnaryOp::relu, [](double x) { return x > 0 ? x : 0; }, -3, 3},
      {UnaryOp::gelu, gelu_ref, -5, 5},
      {UnaryOp::gelu_tanh, gelu_tanh_ref, -5, 5},
      {UnaryOp::silu, [](double x) { return x * sigmoid_ref(x); }, -8, 8},
      {UnaryOp::sin, [](double x) { return std::sin(x); }, -6, 6},
      {UnaryOp::cos, [](double x) { return std::cos(x); }, -6, 6},
      {UnaryOp::erf, [](double x) { return std::erf(x); }, -3, 3},
      {UnaryOp::sign, [](double x) { return double((x > 0) - (x < 0)); }, -3, 3},
      {UnaryOp::square, [](double x) { return x * x; }, -3, 3},
      {UnaryOp::reciprocal, [](double x) { return 1 / x; }, 0.1, 5},
  };
}

}  // namespace

TEST(ElementwiseUnary, ValuesMatchStdInEveryFloatType) {
  for (const UnaryCase& c : unary_cases()) {
    SCOPED_TRACE(unary_op_name(c.op));
    Tensor x64 = uniform64({257}, c.lo, c.hi, 7);
    for (DType dt : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
      SCOPED_TRACE(dtype_name(dt));
      Tensor x = cast(x64, dt);
      Tensor y = unary(c.op, x);
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_EQ(y.shape(), x.shape());
      std::vector<double> in = x.to_vector<double>(), want;
      for (double v : in) want.push_back(c.ref(v));
      double rtol = dt == DType::f64 ? 1e-14 : dt == DType::f32 ? 2e-6 : 1e-2;
      double atol = dt == DType::f64 ? 1e-15 : dt == DType::f32 ? 1e-6 : 1e-2;
      expect_values(y, want, rtol, atol);
    }
  }
}

TEST(ElementwiseUnary, Float32ExpTanhSigmoidWithinTwoUlp) {
  // float32 exp and tanh have their own vectorised implementations: check them
  // densely against double, through the overflow and gradual-underflow edges.
  std::vector<double> xs;
  for (double v = -104.5; v < 89.5; v += 0.0137) xs.push_back(double(float(v)));
  for (double v : {0.0, 1e-8, -1e-8, 0.6249, 0.6251, 88.7228, 88.72283935546875, -87.3365, -103.97, -150.0})
    xs.push_back(double(float(v)));
  Tensor x = tensor(xs, {int64_t(xs.size())});
  std::vector<float> e = exp(x).to_vector<float>(), t = tanh(x).to_vector<float>(), s = sigmoid(x).to_vector<float>();
  auto ulps = [](float got, double want) {
    float w = float(want);
    if (std::isinf(w)) return std::isinf(got) ? 0.0 : kInf;
    double ulp = std::max(double(std::nextafter(std::abs(w), INFINITY) - std::abs(w)), 1.4e-45);
    return std::abs(double(got) - want) / ulp;
  };
  double worst_e = 0, worst_t = 0, worst_s = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    worst_e = std::max(worst_e, ulps(e[i], std::exp(xs[i])));
    worst_t = std::max(worst_t, ulps(t[i], std::tanh(xs[i])));
    // Below -88, exp(-x) overflows and sigmoid flushes to 0, as PyTorch's float32 sigmoid does.
    if (xs[i] > -88) worst_s = std::max(worst_s, ulps(s[i], 1 / (1 + std::exp(-xs[i]))));
  }
  EXPECT_LE(worst_e, 2.0);
  EXPECT_LE(worst_t, 2.0);
  EXPECT_LE(worst_s, 3.0);
  expect_values(exp(tensor({89.0, -104.0, -1000.0, 1000.0}, {4})), {kInf, 0, 0, kInf}, 0);
}

TEST(ElementwiseUnary, SpecialValues) {
  Tensor x = tensor({0.0, -0.0, kInf, -kInf, kNaN}, {5}, DType::f32);
  expect_values(exp(x), {1, 1, kInf, 0, kNaN}, 0);
  expect_values(log(tensor({0.0, 1.0, -1.0}, {3})), {-kInf, 0, kNaN}, 0);
  expect_values(sqrt(tensor({4.0, -1.0}, {2})), {2, kNaN}, 0);
  expect_values(tanh(x), {0, 0, 1, -1, kNaN}, 0);
  expect_values(sigmoid(tensor({-100.0, 100.0, -kInf, kInf}, {4})), {0, 1, 0, 1}, 0, 1e-30);
  expect_values(relu(x), {0, 0, kInf, 0, kNaN}, 0);
  expect_values(reciprocal(tensor({0.0, 2.0}, {2})), {kInf, 0.5}, 0);
  expect_values(gelu(tensor({-kInf, kInf}, {2})), {kNaN, kInf}, 0);  // -inf * 0, as in PyTorch's erf form
  expect_values(silu(tensor({-100.0, 100.0}, {2})), {0, 100}, 0, 1e-30);
  expect_values(sign(x), {0, 0, 1, -1, 0}, 0);  // sign(NaN): neither comparison holds
}

TEST(ElementwiseUnary, IntegerOpsWhereDefined) {
  for (DType dt : {DType::i32, DType::i64}) {
    Tensor x = tensor({-3, -1, 0, 2, 7}, {5}, dt);
    EXPECT_EQ(neg(x).dtype(), dt);
    EXPECT_EQ(neg(x).to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 0, -2, -7}));
    EXPECT_EQ(abs(x).to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 0, 2, 7}));
    EXPECT_EQ(relu(x).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 2, 7}));
    EXPECT_EQ(sign(x).to_vector<int64_t>(), (std::vector<int64_t>{-1, -1, 0, 1, 1}));
    EXPECT_EQ(square(x).to_vector<int64_t>(), (std::vector<int64_t>{9, 1, 0, 4, 49}));
  }
  Tensor u = tensor({0, 3, 255}, {3}, DType::u8);
  EXPECT_EQ(square(tensor({3}, {1}, DType::u8)).to_vector<int64_t>(), (std::vector<int64_t>{9}));
  EXPECT_EQ(abs(u).to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 255}));
}

TEST(ElementwiseUnary, LogicalNot) {
  Tensor b = tensor({1, 0, 1}, {3}, DType::b8);
  Tensor nb = logical_not(b);
  EXPECT_EQ(nb.dtype(), DType::b8);
  EXPECT_EQ(nb.to_vector<bool>(), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(logical_not(tensor({0.0, 2.5, kNaN}, {3})).to_vector<bool>(), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(logical_not(tensor({0, 5}, {2}, DType::i64)).to_vector<bool>(), (std::vector<bool>{true, false}));
}

TEST(ElementwiseUnary, StridedInputs) {
  Tensor base = reshape(arange(0.0, 24.0, 1.0, DType::f32), {4, 6});
  Tensor t = transpose(base, 0, 1);        // [6, 4], strides [1, 6]
  Tensor s = slice(base, 1, 1, 6, 2);      // [4, 3], strides [6, 2]
  Tensor e = broadcast_to(slice(base, 0, 1, 2), {3, 6});  // stride 0 rows
  for (const Tensor& v : {t, s, e}) {
    std::vector<double> in = v.to_vector<double>(), want;
    for (double x : in) want.push_back(std::exp(x / 10));
    expect_values(exp(v / 10.0), want, 2e-6);
    expect_values(neg(v), [&] {
      std::vector<double> w;
      for (double x : in) w.push_back(-x);
      return w;
    }(), 0);
  }
}

TEST(ElementwiseBinary, ValuesInEveryType) {
  std::vector<double> av{-3.5, -1, 0, 0.5, 2, 7.25}, bv{2, -4, 3, 0.25, -2, 7.25};
  struct Case {
    BinaryOp op;
    std::function<double(double, double)> ref;
  };
  std::vector<Case> cases{
      {BinaryOp::add, [](double a, double b) { return a + b; }},
      {BinaryOp::sub, [](double a, double b) { return a - b; }},
      {BinaryOp::mul, [](double a, double b) { return a * b; }},
      {BinaryOp::div, [](double a, double b) { return a / b; }},
      {BinaryOp::maximum, [](double a, double b) { return std::max(a, b); }},
      {BinaryOp::minimum, [](double a, double b) { return std::min(a, b); }},
      {BinaryOp::pow, [](double a, double b) { return std::pow(std::abs(a) + 0.5, std::min(b, 3.0)); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(binary_op_name(c.op));
    for (DType dt : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
      SCOPED_TRACE(dtype_name(dt));
      Tensor a = tensor(av, {6}, dt), b = tensor(bv, {6}, dt);
      if (c.op == BinaryOp::pow) {  // positive bases, exponents that stay inside float16's range
        a = abs(a) + 0.5;
        b = minimum(b, scalar(3.0, dt));
      }
      Tensor y = binary(c.op, a, b);
      EXPECT_EQ(y.dtype(), dt);
      std::vector<double> want;
      for (size_t i = 0; i < av.size(); ++i) want.push_back(c.ref(av[i], bv[i]));
      double tol = dt == DType::f64 ? 1e-14 : dt == DType::f32 ? 1e-6 : 1e-2;
      expect_values(y, want, tol, tol);
    }
  }
}

TEST(ElementwiseBinary, Integers) {
  for (DType dt : {DType::i32, DType::i64}) {
    Tensor a = tensor({7, -7, 3, 0}, {4}, dt), b = tensor({2, 2, -4, 5}, {4}, dt);
    EXPECT_EQ(add(a, b).to_vector<int64_t>(), (std::vector<int64_t>{9, -5, -1, 5}));
    EXPECT_EQ(sub(a, b).to_vector<int64_t>(), (std::vector<int64_t>{5, -9, 7, -5}));
    EXPECT_EQ(mul(a, b).to_vector<int64_t>(), (std::vector<int64_t>{14, -14, -12, 0}));
    EXPECT_EQ(div(a, b).to_vector<int64_t>(), (std::vector<int64_t>{3, -3, 0, 0}));  // truncates, like C++
    EXPECT_EQ(maximum(a, b).to_vector<int64_t>(), (std::vector<int64_t>{7, 2, 3, 5}));
    EXPECT_EQ(minimum(a, b).to_vector<int64_t>(), (std::vector<int64_t>{2, -7, -4, 0}));
    EXPECT_EQ(pow(a, tensor({2, 3, 0, 2}, {4}, dt)).to_vector<int64_t>(), (std::vector<int64_t>{49, -343, 1, 0}));
    EXPECT_EQ(add(a, b).dtype(), dt);
  }
  // Integer division by zero must not trap (SIGFPE); it yields 0.
  EXPECT_EQ(div(tensor({5}, {1}, DType::i64), tensor({0}, {1}, DType::i64)).item<int64_t>(), 0);
  // Large int64 values survive exactly.
  Tensor big = tensor_i64({(int64_t(1) << 60) + 1}, {1});
  EXPECT_EQ((big + tensor_i64({1}, {1})).item<int64_t>(), (int64_t(1) << 60) + 2);
}

TEST(ElementwiseBinary, ComparisonsAndLogical) {
  Tensor a = tensor({1, 2, 3, kNaN}, {4}), b = tensor({2, 2, 2, kNaN}, {4});
  auto bools = [](const Tensor& t) {
    EXPECT_EQ(t.dtype(), DType::b8);
    return t.to_vector<bool>();
  };
  EXPECT_EQ(bools(eq(a, b)), (std::vector<bool>{false, true, false, false}));
  EXPECT_EQ(bools(ne(a, b)), (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ(bools(lt(a, b)), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(bools(le(a, b)), (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(bools(gt(a, b)), (std::vector<bool>{false, false, true, false}));
  EXPECT_EQ(bools(ge(a, b)), (std::vector<bool>{false, true, true, false}));
  Tensor p = tensor({1, 1, 0, 0}, {4}, DType::b8), q = tensor({1, 0, 1, 0}, {4}, DType::b8);
  EXPECT_EQ(bools(logical_and(p, q)), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(bools(logical_or(p, q)), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(bools(eq(p, q)), (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(bools(logical_and(tensor({2.0, 0.0}, {2}), tensor({-1.0, 3.0}, {2}))), (std::vector<bool>{true, false}));
  // Mixed dtypes are promoted before comparing: 1 (int) == 1.0 (float).
  EXPECT_TRUE(eq(tensor({1}, {1}, DType::i64), tensor({1.0}, {1})).item<bool>());
  EXPECT_TRUE(lt(tensor({1}, {1}, DType::i32), tensor({1.5}, {1}, DType::bf16)).item<bool>());
}

TEST(ElementwiseBinary, MaximumMinimumClampNaNAndInf) {
  Tensor a = tensor({kNaN, 1, kInf, -kInf, 2, kNaN}, {6});
  Tensor b = tensor({1, kNaN, 5, 5, -kInf, kNaN}, {6});
  expect_values(maximum(a, b), {kNaN, kNaN, kInf, 5, 2, kNaN}, 0);
  expect_values(minimum(a, b), {kNaN, kNaN, 5, -kInf, -kInf, kNaN}, 0);
  for (DType dt : {DType::f64, DType::bf16}) {
    expect_values(maximum(cast(a, dt), cast(b, dt)), {kNaN, kNaN, kInf, 5, 2, kNaN}, 0);
  }
  Tensor x = tensor({kNaN, -kInf, kInf, -2, 0.5, 3}, {6});
  expect_values(clamp(x, -1, 1), {kNaN, -1, 1, -1, 0.5, 1}, 0);
  expect_values(clamp(x, -kInf, 1), {kNaN, -kInf, 1, -2, 0.5, 1}, 0);
  expect_values(clamp(x, 0, kInf), {kNaN, 0, kInf, 0, 0.5, 3}, 0);
  // One-sided clamps of integer tensors (an infinite bound must saturate, not overflow).
  Tensor i = tensor({-5, 0, 9}, {3}, DType::i64);
  EXPECT_EQ(clamp(i, -kInf, 3).to_vector<int64_t>(), (std::vector<int64_t>{-5, 0, 3}));
  EXPECT_EQ(clamp(i, -1, kInf).to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 9}));
  EXPECT_EQ(clamp(tensor({-5, 200}, {2}, DType::i32), -1e20, 1e20).to_vector<int64_t>(),
            (std::vector<int64_t>{-5, 200}));
  EXPECT_EQ(clamp(tensor({0, 250}, {2}, DType::u8), 3, 1000).to_vector<int64_t>(), (std::vector<int64_t>{3, 250}));
  EXPECT_EQ(clamp(i, -0.5, 2.5).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 2}));  // inward rounding
}

TEST(ElementwiseBinary, BroadcastingAllShapeCombinations) {
  auto range = [](double n, const Shape& s) { return reshape(arange(0.0, n, 1.0, DType::f32), s) + 1.0; };
  Tensor m = range(12, {3, 4});
  Tensor base3 = range(24, {2, 3, 4});
  std::vector<std::pair<Tensor, Tensor>> pairs{
      {m, scalar(2.5)},                                             // tensor with scalar
      {scalar(-1.5), m},                                            // scalar first
      {m, tensor({1, 2, 3, 4}, {4})},                               // row
      {m, tensor({10, 20, 30}, {3, 1})},                            // column
      {tensor({1, 2, 3}, {3, 1}), tensor({1, 2, 3, 4}, {1, 4})},   // outer-product shape
      {base3, m},                                                   // new leading dim
      {tensor({1, 2}, {2, 1, 1}), m},                               // rank 3 vs rank 2 with ones
      {transpose(range(12, {4, 3}), 0, 1), m},                      // transposed operand
      {m, transpose(range(12, {4, 3}), 0, 1)},                      // transposed second operand
      {slice(range(24, {3, 8}), 1, 1, 8, 2), m},                    // stepped slice (stride 2)
      {broadcast_to(tensor({5, 6, 7, 8}, {4}), {3, 4}), m},         // expanded (stride 0)
      {slice(range(40, {5, 8}), 0, -3, 5), slice(range(6, {3, 2}), 1, 1, 2)},  // sliced column, offset view
      {permute(range(24, {4, 2, 3}), {1, 2, 0}), base3},            // permuted 3-d
      {range(4, {1, 4}), range(3, {3, 1})},                         // both broadcast
      {zeros({0, 4}), tensor({1, 2, 3, 4}, {4})},                   // empty result
  };
  struct Op {
    BinaryOp op;
    std::function<double(double, double)> ref;
  };
  std::vector<Op> ops{{BinaryOp::add, [](double a, double b) { return a + b; }},
                      {BinaryOp::sub, [](double a, double b) { return a - b; }},
                      {BinaryOp::mul, [](double a, double b) { return a * b; }},
                      {BinaryOp::div, [](double a, double b) { return a / b; }},
                      {BinaryOp::maximum, [](double a, double b) { return std::max(a, b); }},
                      {BinaryOp::gt, [](double a, double b) { return double(a > b); }}};
  for (size_t k = 0; k < pairs.size(); ++k) {
    SCOPED_TRACE("pair " + std::to_string(k));
    const auto& [a, b] = pairs[k];
    Shape out = broadcast_shapes(a.shape(), b.shape(), "test");
    std::vector<double> av = broadcast_values(a, out), bv = broadcast_values(b, out);
    for (const Op& o : ops) {
      SCOPED_TRACE(binary_op_name(o.op));
      Tensor y = binary(o.op, a, b);
      EXPECT_EQ(y.shape(), out);
      EXPECT_TRUE(y.is_contiguous());
      std::vector<double> want;
      for (size_t i = 0; i < av.size(); ++i) want.push_back(o.ref(av[i], bv[i]));
      expect_values(y, want, 1e-6);
    }
  }
  // where broadcasts all three operands.
  Tensor cond = tensor({1, 0, 1}, {3, 1}, DType::b8);
  Tensor w = where(cond, m, tensor({-1, -2, -3, -4}, {4}));
  expect_values(w, {1, 2, 3, 4, -1, -2, -3, -4, 9, 10, 11, 12}, 0);
  expect_values(where(transpose(eq(range(12, {4, 3}), range(12, {4, 3})), 0, 1), m, 0.0),
                m.to_vector<double>(), 0);
}

TEST(ElementwiseBinary, LargeBroadcastsRunInParallelCorrectly) {
  // Big enough to take the multi-threaded and chunked paths of for_each_strided.
  Tensor a = reshape(arange(0.0, 300000.0, 1.0, DType::f32), {600, 500});
  Tensor row = arange(0.0, 500.0, 1.0, DType::f32), col = reshape(arange(0.0, 600.0, 1.0, DType::f32), {600, 1});
  std::vector<float> y = (a + row).to_vector<float>(), z = (transpose(a, 0, 1) * 2.0).to_vector<float>();
  std::vector<float> c = (col - a).to_vector<float>();
  for (int64_t i = 0; i < 600; i += 37)
    for (int64_t j = 0; j < 500; j += 13) {
      EXPECT_EQ(y[size_t(i * 500 + j)], float(i * 500 + j + j));
      EXPECT_EQ(z[size_t(j * 600 + i)], float(2 * (i * 500 + j)));
      EXPECT_EQ(c[size_t(i * 500 + j)], float(i - (i * 500 + j)));
    }
  Tensor flat = arange(0.0, 1 << 18, 1.0, DType::f32);
  std::vector<float> f = (flat + flat).to_vector<float>();
  for (size_t i = 0; i < f.size(); i += 4099) EXPECT_EQ(f[i], float(2 * i));
  EXPECT_EQ(f.back(), float(2 * ((1 << 18) - 1)));
}

TEST(ElementwiseBinary, TypePromotion) {
  Tensor i32 = tensor({1, 2}, {2}, DType::i32), i64 = tensor({3, 4}, {2}, DType::i64);
  Tensor f32 = tensor({0.5, 1.5}, {2}), f64 = tensor({0.25, 0.75}, {2}, DType::f64);
  Tensor bf = tensor({1, 2}, {2}, DType::bf16), hf = tensor({0.5, 0.5}, {2}, DType::f16);
  Tensor b8 = tensor({1, 0}, {2}, DType::b8), u8 = tensor({200, 7}, {2}, DType::u8);
  EXPECT_EQ((i32 + f32).dtype(), DType::f32);
  expect_values(i32 + f32, {1.5, 3.5}, 0);
  EXPECT_EQ((i32 + i64).dtype(), DType::i64);
  EXPECT_EQ((f32 + f64).dtype(), DType::f64);
  EXPECT_EQ((bf + hf).dtype(), DType::f32);  // no common 16-bit type
  expect_values(bf + hf, {1.5, 2.5}, 0);
  EXPECT_EQ((bf + f32).dtype(), DType::f32);
  EXPECT_EQ((hf * i64).dtype(), DType::f16);
  EXPECT_EQ((b8 * i32).dtype(), DType::i32);
  expect_values(b8 * i32, {1, 0}, 0);
  EXPECT_EQ((b8 + f32).dtype(), DType::f32);
  EXPECT_EQ((u8 + i32).dtype(), DType::i32);
  expect_values(u8 + i32, {201, 9}, 0);
  // Double operands: keep an int tensor int for whole numbers, float32 for fractions.
  EXPECT_EQ((i64 * 2.0).dtype(), DType::i64);
  EXPECT_EQ((i64 * 0.5).dtype(), DType::f32);
  expect_values(i64 * 0.5, {1.5, 2}, 0);
  EXPECT_EQ((b8 * 3.0).dtype(), DType::i64);
  EXPECT_EQ((bf * 3.0).dtype(), DType::bf16);
  EXPECT_EQ((1.0 - f64).dtype(), DType::f64);
  expect_values(1.0 / f32, {2, 1.0 / 1.5}, 1e-7);
  EXPECT_EQ(where(tensor({1, 0}, {2}, DType::b8), i32, f32).dtype(), DType::f32);
  expect_values(where(tensor({1, 0}, {2}, DType::b8), i32, f32), {1, 1.5}, 0);
}

TEST(ElementwiseCast, ConversionsBetweenAllTypes) {
  std::vector<DType> all{DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::b8};
  Tensor src = tensor({0, 1, 2, 100}, {4}, DType::f64);
  for (DType from : all)
    for (DType to : all) {
      Tensor y = cast(cast(src, from), to);
      EXPECT_EQ(y.dtype(), to);
      std::vector<double> want = to == DType::b8 || from == DType::b8 ? std::vector<double>{0, 1, 1, 1}
                                                                       : std::vector<double>{0, 1, 2, 100};
      expect_values(y, want, 0);
    }
  expect_values(cast(tensor({-2.7, 2.7}, {2}), DType::i32), {-2, 2}, 0);  // truncation toward zero
  expect_values(cast(tensor({1.0 + 1.0 / 256}, {1}), DType::bf16), {1.0}, 0);  // round to nearest even
  expect_values(cast(tensor({70000.0}, {1}), DType::f16), {kInf}, 0);
  EXPECT_TRUE(cast(tensor({kNaN}, {1}), DType::b8).item<bool>());
  // Casting a strided view makes it contiguous; casting to the same dtype is the identity.
  Tensor t = transpose(reshape(arange(0.0, 6.0, 1.0, DType::f32), {2, 3}), 0, 1);
  Tensor c = cast(t, DType::f64);
  EXPECT_TRUE(c.is_contiguous());
  expect_values(c, {0, 3, 1, 4, 2, 5}, 0);
  EXPECT_TRUE(cast(t, DType::f32).same(t));
}

TEST(ElementwiseCopy, ContiguousCloneToDevice) {
  Tensor base = reshape(arange(0.0, 6.0, 1.0, DType::f32), {2, 3});
  EXPECT_TRUE(contiguous(base).same(base));
  Tensor c = clone(base);
  EXPECT_NE(c.storage(), base.storage());
  base.data<float>()[0] = 42;
  EXPECT_EQ(c.to_vector<float>()[0], 0.0f);
  Tensor t = contiguous(transpose(base, 0, 1));
  EXPECT_TRUE(t.is_contiguous());
  expect_values(t, {42, 3, 1, 4, 2, 5}, 0);
  EXPECT_TRUE(to_device(base, Device::cpu()).same(base));
}

TEST(ElementwiseCopy, LargeTransposedCopy) {
  // Exercises the tiled path for copies whose input is strided in the inner dimension.
  int64_t r = 300, c = 517;
  Tensor a = reshape(arange(0.0, double(r * c), 1.0, DType::f32), {r, c});
  std::vector<float> t = contiguous(transpose(a, 0, 1)).to_vector<float>();
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = 0; j < r; j += 7) ASSERT_EQ(t[size_t(i * r + j)], float(j * c + i));
  Tensor b = reshape(arange(0.0, 2.0 * 64 * 96, 1.0, DType::f64), {2, 64, 96});
  std::vector<double> p = contiguous(permute(b, {2, 0, 1})).to_vector<double>();  // [96, 2, 64]
  for (int64_t x = 0; x < 96; ++x)
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t y = 0; y < 64; y += 5)
        ASSERT_EQ(p[size_t((x * 2 + n) * 64 + y)], double(n * 64 * 96 + y * 96 + x));
  std::vector<float> bf = cast(transpose(a, 0, 1), DType::bf16).to_vector<float>();
  EXPECT_EQ(bf[size_t(3 * r + 2)], float(bfloat16(float(2 * c + 3))));
}

// ---- float64 gradient checks -------------------------------------------------------------

TEST(ElementwiseGrad, EveryUnaryOp) {
  for (const UnaryCase& c : unary_cases()) {
    if (c.op == UnaryOp::sign) continue;  // not differentiable (zero gradient by definition)
    SCOPED_TRACE(unary_op_name(c.op));
    double lo = c.lo, hi = c.hi;
    if (c.op == UnaryOp::sqrt) lo = 0.1;
    Tensor x = uniform64({3, 4}, lo, hi, 11);
    expect_gradcheck([&](const std::vector<Tensor>& in) { return unary(c.op, in[0]); }, {x});
    // Through a transposed (strided) input too.
    expect_gradcheck([&](const std::vector<Tensor>& in) { return unary(c.op, transpose(in[0], 0, 1)); }, {x});
  }
}

TEST(ElementwiseGrad, GeluBothFormsAtKinkyPoints) {
  Tensor x = tensor({-3, -1, -0.1, 0, 0.1, 1, 3}, {7}, DType::f64);
  expect_gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0], true); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return silu(in[0]); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return erf(in[0]); }, {x});
}

// The fused backward itself, differentiated in both inputs (its vjp uses f'').
TEST(ElementwiseGrad, ActivationGradBothInputs) {
  Tensor x = tensor({-3, -1, -0.1, 0, 0.1, 1, 3}, {7}, DType::f64);
  Tensor g = tensor({0.5, -1, 2, 1, -0.3, 0.7, 1.5}, {7}, DType::f64);
  for (UnaryOp op : {UnaryOp::gelu, UnaryOp::gelu_tanh, UnaryOp::silu}) {
    SCOPED_TRACE(unary_op_name(op));
    expect_gradcheck([op](const std::vector<Tensor>& in) { return activation_grad(op, in[0], in[1]); }, {x, g});
    // float32 forward agrees with the float64 one.
    Tensor d32 = activation_grad(op, cast(x, DType::f32), cast(g, DType::f32));
    std::vector<double> want = activation_grad(op, x, g).to_vector<double>();
    std::vector<float> got = d32.to_vector<float>();
    for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(got[k], want[k], 2e-6 * (1 + std::abs(want[k])));
  }
}

TEST(ElementwiseGrad, EveryBinaryOpWithBroadcasting) {
  std::vector<std::pair<Shape, Shape>> shapes{{{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{}, {2, 3}},
                                              {{2, 3, 4}, {3, 1}}};
  std::vector<BinaryOp> ops{BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::pow,
                            BinaryOp::maximum, BinaryOp::minimum};
  for (BinaryOp op : ops)
    for (const auto& [sa, sb] : shapes) {
      SCOPED_TRACE(std::string(binary_op_name(op)) + " " + shape_str(sa) + " " + shape_str(sb));
      // Positive bases for pow and divisors away from zero; random values make ties impossible.
      Tensor a = op == BinaryOp::pow ? uniform64(sa, 0.5, 2, 3) : randn64(sa, 3);
      Tensor b = op == BinaryOp::div ? uniform64(sb, 0.5, 2, 4) : op == BinaryOp::pow ? uniform64(sb, -1, 2, 4)
                                                                                       : randn64(sb, 4);
      expect_gradcheck([&](const std::vector<Tensor>& in) { return binary(op, in[0], in[1]); }, {a, b});
    }
}

TEST(ElementwiseGrad, PowWithScalarExponentAndZeroBase) {
  Tensor x = uniform64({5}, 0.2, 2, 5);
  expect_gradcheck([](const std::vector<Tensor>& in) { return pow(in[0], 3.0); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return pow(in[0], 0.5); }, {x});
  // d/db 0^b is defined as 0 (not NaN) for b > 0.
  Tensor a = tensor({0.0, 2.0}, {2}, DType::f64), b = tensor({2.0, 3.0}, {2}, DType::f64);
  b.requires_grad_();
  sum(pow(a, b)).backward();
  expect_values(b.grad(), {0, 8 * std::log(2.0)}, 1e-12);
}

TEST(ElementwiseGrad, MaximumMinimumTiesSplitEvenly) {
  Tensor a = tensor({1, 2, 3}, {3}, DType::f64), b = tensor({1, 5, 0}, {3}, DType::f64);
  a.requires_grad_();
  b.requires_grad_();
  sum(maximum(a, b)).backward();
  expect_values(a.grad(), {0.5, 0, 1}, 0);
  expect_values(b.grad(), {0.5, 1, 0}, 0);
  Tensor c = tensor({1, 2}, {2}, DType::f64), d = tensor({1, 1}, {2}, DType::f64);
  c.requires_grad_();
  sum(minimum(c, d)).backward();
  expect_values(c.grad(), {0.5, 0}, 0);
}

TEST(ElementwiseGrad, WhereClampCastContiguous) {
  Tensor cond = tensor({1, 0, 1, 0, 0, 1}, {2, 3}, DType::b8);
  expect_gradcheck([&](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); },
                   {randn64({2, 3}, 1), randn64({3}, 2)});
  expect_gradcheck([&](const std::vector<Tensor>& in) { return where(cond, in[0], 2.0); }, {randn64({2, 1}, 3)});
  // Values kept away from the bounds, where the derivative jumps.
  Tensor x = tensor({-2, -0.7, -0.2, 0.1, 0.4, 0.9, 3}, {7}, DType::f64);
  expect_gradcheck([](const std::vector<Tensor>& in) { return clamp(in[0], -0.5, 0.5); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return clamp(in[0], -kInf, 0.5); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return contiguous(transpose(in[0], 0, 1)); },
                   {randn64({3, 2}, 6)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return clone(in[0]) * in[0]; }, {randn64({4}, 7)});
  // cast: the gradient comes back in the input's dtype, unchanged in value.
  Tensor y = randn64({4}, 8);
  y.requires_grad_();
  Tensor w = tensor({1, 2, 3, 4}, {4});
  sum(cast(y, DType::f32) * w).backward();
  EXPECT_EQ(y.grad().dtype(), DType::f64);
  expect_values(y.grad(), {1, 2, 3, 4}, 0);
  // Through float32 the function is the identity up to rounding, so a wide step is exact enough.
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return cast(cast(in[0], DType::f32), DType::f64); },
                                {randn64({3}, 9)}, 1e-2, 1e-4, 1e-3);
  EXPECT_TRUE(r.ok) << r.message;
  // A cast to an integer type ends the graph.
  EXPECT_FALSE(cast(y, DType::i64).requires_grad());
}

TEST(ElementwiseGrad, ComparisonsAndSignDoNotRecord) {
  Tensor x = randn64({3}, 1);
  x.requires_grad_();
  EXPECT_FALSE(gt(x, x).requires_grad());
  EXPECT_FALSE(sign(x).requires_grad());
  EXPECT_FALSE(logical_not(x).requires_grad());
  EXPECT_TRUE(abs(x).requires_grad());
}

// ---- argument checks: every error names its op ---------------------------------------------

TEST(ElementwiseErrors, MessagesNameTheOp) {
  Tensor i = tensor({1, 2}, {2}, DType::i64), b = tensor({1, 0}, {2}, DType::b8), f = zeros({2, 3});
  EXPECT_ERROR(log(i), "[log] expects a floating-point tensor, got int64");
  EXPECT_ERROR(exp(i), "[exp]");
  EXPECT_ERROR(gelu(i), "[gelu]");
  EXPECT_ERROR(gelu(i, true), "[gelu_tanh]");
  EXPECT_ERROR(activation_grad(UnaryOp::tanh, f, f), "[activation_grad] no fused derivative for tanh");
  EXPECT_ERROR(activation_grad(UnaryOp::gelu, f, zeros({3, 2})), "[activation_grad] x and grad shapes differ");
  EXPECT_ERROR(activation_grad(UnaryOp::silu, i, i), "[activation_grad] expects floating-point tensors, got int64");
  EXPECT_ERROR(neg(b), "[neg]");
  EXPECT_ERROR(abs(b), "[abs]");
  EXPECT_ERROR(f + zeros({4}), "[add] shapes [2, 3] and [4] cannot be broadcast");
  EXPECT_ERROR(mul(f, zeros({3, 2})), "[mul]");
  EXPECT_ERROR(eq(f, zeros({5})), "[eq]");
  EXPECT_ERROR(add(b, b), "[add]");
  EXPECT_ERROR(maximum(b, b), "[maximum]");
  EXPECT_ERROR(where(i, f, f), "[where] condition must be bool");
  EXPECT_ERROR(where(tensor({1, 0, 1}, {3}, DType::b8), f, zeros({2})), "[where]");
  EXPECT_ERROR(clamp(f, 1, -1), "[clamp] lower bound 1 is above upper bound -1");
  EXPECT_ERROR(clamp(f, kNaN, 1), "[clamp]");
  EXPECT_ERROR(clamp(b, 0, 1), "[clamp]");
  EXPECT_ERROR(add(f, Tensor()), "[add]");
  EXPECT_ERROR(exp(Tensor::unallocated({2}, DType::f32, Device::cpu())), "[exp] input 0 has no data");
}
