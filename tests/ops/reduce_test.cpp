// Tests for the reductions (ember/ops/reduce.h): values against a reference
// reduction over every kind of axis set, keepdim, strided and empty inputs;
// arg-reductions; var and logsumexp; float64 gradient checks (ties in max split
// the gradient as in PyTorch); the parallel paths; and argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>

#include "ember/ember.h"
#include "test_util.h"

using namespace ember;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void expect_values(const Tensor& t, const std::vector<double>& want, double rtol, double atol = 0) {
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) EXPECT_TRUE(std::isnan(got[i])) << "element " << i << ": got " << got[i];
    else if (std::isinf(want[i])) EXPECT_EQ(got[i], want[i]) << "element " << i;
    else EXPECT_NEAR(got[i], want[i], atol + rtol * std::abs(want[i])) << "element " << i;
  }
}

void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& in) {
  GradcheckResult r = gradcheck(fn, in);
  EXPECT_TRUE(r.ok) << r.message;
}

Tensor randn64(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, DType::f64, Device::cpu(), &g);
}

// Reference reduction in double: folds `f` over the elements of each output
// position, visiting them in row-major order.
struct Ref {
  Shape shape;
  std::vector<double> values;
};
Ref reference(const Tensor& x, std::vector<int64_t> axes, bool keepdim, double init,
              const std::function<double(double, double)>& f) {
  int64_t nd = x.ndim();
  std::set<int64_t> red;
  if (axes.empty())
    for (int64_t d = 0; d < nd; ++d) red.insert(d);
  for (int64_t a : axes) red.insert(a < 0 ? a + nd : a);
  Ref r;
  Shape kept;
  for (int64_t d = 0; d < nd; ++d) {
    if (!red.count(d)) kept.push_back(x.shape()[size_t(d)]);
    if (!red.count(d) || keepdim) r.shape.push_back(red.count(d) ? 1 : x.shape()[size_t(d)]);
  }
  r.values.assign(size_t(numel(kept)), init);
  std::vector<double> v = x.to_vector<double>();
  for (int64_t n = 0; n < x.numel(); ++n) {
    int64_t rem = n, out = 0, mul = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      int64_t i = rem % x.shape()[size_t(d)];
      rem /= x.shape()[size_t(d)];
      if (!red.count(d)) {
        out += i * mul;
        mul *= x.shape()[size_t(d)];
      }
    }
    r.values[size_t(out)] = f(r.values[size_t(out)], v[size_t(n)]);
  }
  return r;
}

double nan_max(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b); }
double nan_min(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b); }

// Inputs of one logical shape [2, 3, 4, 5] laid out in different ways.
std::vector<std::pair<std::string, Tensor>> layouts() {
  Tensor c = randn64({2, 3, 4, 5}, 21);
  Tensor p = permute(randn64({5, 3, 2, 4}, 22), {2, 1, 3, 0});            // strided everywhere
  Tensor s = slice(slice(randn64({2, 6, 4, 7}, 23), 1, 0, 6, 2), 3, 1, 6);  // stepped + offset
  Tensor e = broadcast_to(randn64({2, 1, 4, 5}, 24), {2, 3, 4, 5});         // stride 0
  return {{"contiguous", c}, {"permuted", p}, {"sliced", s}, {"expanded", e}};
}

std::vector<std::vector<int64_t>> axis_sets() {
  return {{0}, {1}, {3}, {-1}, {-3}, {1, 2}, {0, 2}, {1, 3}, {0, 3}, {0, 1, 3}, {2, 0}, {}, {0, 1, 2, 3}};
}

}  // namespace

TEST(Reduce, SumMeanMaxMinProdOverEveryAxisSet) {
  struct Op {
    const char* name;
    std::function<Tensor(const Tensor&, const Axes&, bool)> fn;
    double init;
    std::function<double(double, double)> f;
  };
  std::vector<Op> ops{
      {"sum", [](const Tensor& x, const Axes& a, bool k) { return sum(x, a, k); }, 0,
       [](double a, double b) { return a + b; }},
      {"max", [](const Tensor& x, const Axes& a, bool k) { return max(x, a, k); }, -kInf, nan_max},
      {"min", [](const Tensor& x, const Axes& a, bool k) { return min(x, a, k); }, kInf, nan_min},
      {"prod", [](const Tensor& x, const Axes& a, bool k) { return prod(x, a, k); }, 1,
       [](double a, double b) { return a * b; }},
  };
  for (const auto& [layout, x] : layouts())
    for (const Op& op : ops)
      for (const auto& axes : axis_sets())
        for (bool keepdim : {false, true}) {
          SCOPED_TRACE(layout + " " + op.name + " axes " + shape_str(axes) + (keepdim ? " keepdim" : ""));
          for (DType dt : {DType::f64, DType::f32}) {
            Tensor xi = cast(x, dt);
            Ref want = reference(xi, axes, keepdim, op.init, op.f);
            Tensor y = op.fn(xi, axes, keepdim);
            EXPECT_EQ(y.shape(), want.shape);
            EXPECT_EQ(y.dtype(), dt);
            expect_values(y, want.values, dt == DType::f64 ? 1e-12 : 1e-5, dt == DType::f64 ? 1e-12 : 1e-5);
          }
          if (std::string(op.name) == "sum") {  // mean is sum / count
            Tensor y = mean(x, axes, keepdim);
            Ref s = reference(x, axes, keepdim, 0, op.f);
            double count = double(x.numel()) / double(s.values.size());
            for (double& v : s.values) v /= count;
            expect_values(y, s.values, 1e-12, 1e-14);
          }
        }
}

TEST(Reduce, DtypesOfResults) {
  Tensor i32 = tensor({1, 2, 3, 4}, {2, 2}, DType::i32);
  EXPECT_EQ(sum(i32).dtype(), DType::i64);  // integer sums widen, as in PyTorch
  EXPECT_EQ(sum(i32).item<int64_t>(), 10);
  EXPECT_EQ(sum(tensor({1, 0, 1}, {3}, DType::b8)).item<int64_t>(), 2);
  EXPECT_EQ(sum(tensor({200, 100}, {2}, DType::u8)).item<int64_t>(), 300);  // no uint8 overflow
  EXPECT_EQ(max(i32, {1}).dtype(), DType::i32);
  expect_values(max(i32, {1}), {2, 4}, 0);
  expect_values(min(tensor({5, -7}, {2}, DType::i64)), {-7}, 0);
  expect_values(prod(i32, {0}), {3, 8}, 0);
  Tensor bf = cast(randn64({64, 33}, 3), DType::bf16);
  Tensor s = sum(bf, {1});
  EXPECT_EQ(s.dtype(), DType::bf16);
  Ref want = reference(bf, {1}, false, 0, [](double a, double b) { return a + b; });
  expect_values(s, want.values, 1e-2, 3e-2);
  expect_values(mean(cast(tensor({1, 2, 3, 4}, {4}), DType::f16)), {2.5}, 0);
}

TEST(Reduce, EmptyAndZeroDimInputs) {
  Tensor e = zeros({3, 0, 2});
  EXPECT_EQ(sum(e, {1}).shape(), (Shape{3, 2}));
  expect_values(sum(e, {1}), std::vector<double>(6, 0.0), 0);
  expect_values(prod(e, {1}), std::vector<double>(6, 1.0), 0);
  expect_values(mean(e, {1}), std::vector<double>(6, kNaN), 0);  // 0/0, as in PyTorch
  EXPECT_EQ(sum(e, {0}).shape(), (Shape{0, 2}));
  EXPECT_EQ(max(e, {0}).shape(), (Shape{0, 2}));  // nothing empty is reduced
  EXPECT_EQ(sum(e).item<float>(), 0.0f);
  expect_values(logsumexp(e, {1}), std::vector<double>(6, -kInf), 0);
  // A 0-d tensor reduces to itself, over no axes or over axis 0 / -1.
  Tensor s = scalar(3.5);
  EXPECT_EQ(sum(s).shape(), Shape{});
  EXPECT_EQ(sum(s).item<float>(), 3.5f);
  EXPECT_EQ(sum(s, {0}).item<float>(), 3.5f);
  EXPECT_EQ(max(s, {-1}, true).shape(), Shape{});
  EXPECT_EQ(mean(s, {0}).item<float>(), 3.5f);
  EXPECT_EQ(argmax(s, 0).item<int64_t>(), 0);
  EXPECT_EQ(var(s, {}, false, 0).item<float>(), 0.0f);
  EXPECT_EQ(logsumexp(s, {0}).item<float>(), 3.5f);
}

TEST(Reduce, NaNAndInfinity) {
  Tensor x = tensor({1, kNaN, 3, -kInf, 2, 5}, {2, 3});
  expect_values(max(x, {1}), {kNaN, 5}, 0);
  expect_values(min(x, {1}), {kNaN, -kInf}, 0);
  expect_values(max(x, {0}), {1, kNaN, 5}, 0);
  expect_values(sum(x, {1}), {kNaN, -kInf}, 0);
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));  // NaN wins
  EXPECT_EQ(argmin(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  expect_values(max(tensor({-kInf, -kInf}, {2})), {-kInf}, 0);
}

TEST(Reduce, ArgmaxArgmin) {
  Tensor x = tensor({3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}, {3, 4});
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_EQ(argmin(x, -1).to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 1}));
  EXPECT_EQ(argmin(x, 1).dtype(), DType::i64);
  EXPECT_EQ(argmax(x, 1, true).shape(), (Shape{3, 1}));
  // Ties: the first index.
  EXPECT_EQ(argmax(tensor({2, 7, 7, 1}, {4}), 0).item<int64_t>(), 1);
  EXPECT_EQ(argmin(tensor({2, 1, 7, 1}, {4}), 0).item<int64_t>(), 1);
  // Strided input (transposed) and integer and bf16 input.
  EXPECT_EQ(argmax(transpose(x, 0, 1), 0).to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(argmax(cast(x, DType::i32), 1).to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(argmin(cast(x, DType::bf16), 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 0}));
  // A 3-d middle axis.
  Tensor y = reshape(arange(0.0, 24.0, 1.0, DType::f32), {2, 3, 4});
  EXPECT_EQ(argmax(neg(y), 1).to_vector<int64_t>(), std::vector<int64_t>(8, 0));
  EXPECT_EQ(argmax(y, 1).to_vector<int64_t>(), std::vector<int64_t>(8, 2));
  // Argmax does not record history.
  Tensor z = randn64({4}, 1);
  z.requires_grad_();
  EXPECT_FALSE(argmax(z, 0).requires_grad());
}

TEST(Reduce, VarAndLogsumexp) {
  Tensor x = tensor({1, 2, 3, 4, 10, 20, 30, 40}, {2, 4}, DType::f64);
  expect_values(var(x, {1}), {5.0 / 3, 500.0 / 3}, 1e-14);  // unbiased by default
  expect_values(var(x, {1}, false, 0), {1.25, 125}, 1e-14);
  expect_values(var(x, {0}, true), {40.5, 162, 364.5, 648}, 1e-14);
  EXPECT_EQ(var(x, {0}, true).shape(), (Shape{1, 4}));
  expect_values(var(x), {[&] {
                  double m = 110.0 / 8, s = 0;
                  for (double v : x.to_vector<double>()) s += (v - m) * (v - m);
                  return s / 7;
                }()},
                1e-14);
  // Var with one element and correction 1 divides by zero, as in PyTorch.
  EXPECT_TRUE(std::isnan(var(tensor({1.0}, {1})).item<double>()));
  // logsumexp: exact for ordinary values, stable for huge ones, -inf rows allowed.
  Tensor l = tensor({0, 1, 2, 1000, 1001, 1002, -kInf, -kInf, -kInf, kInf, 0, 1}, {4, 3}, DType::f64);
  double base = std::log(1 + std::exp(1.0) + std::exp(2.0));
  expect_values(logsumexp(l, {1}), {base, 1000 + base, -kInf, kInf}, 1e-14);
  EXPECT_EQ(logsumexp(l, {1}, true).shape(), (Shape{4, 1}));
  expect_values(logsumexp(cast(l, DType::f32), {-1}), {base, 1000 + base, -kInf, kInf}, 1e-6);
  Tensor m = randn64({3, 4, 5}, 9);
  Ref want = reference(exp(m), {0, 2}, false, 0, [](double a, double b) { return a + b; });
  for (double& v : want.values) v = std::log(v);
  expect_values(logsumexp(m, {0, 2}), want.values, 1e-13);
}

TEST(Reduce, LargeReductionsMatchDoubleReference) {
  // Big enough for the parallel and blocked paths; checks accuracy of float accumulation.
  Generator g(5);
  Tensor x = uniform({1 << 20}, 0.0, 1.0, DType::f32, Device::cpu(), &g);
  double exact = sum(cast(x, DType::f64)).item<double>();
  EXPECT_NEAR(sum(x).item<double>(), exact, exact * 2e-6);
  EXPECT_NEAR(mean(x).item<double>(), exact / double(1 << 20), 1e-6);
  Tensor m = reshape(x, {1024, 1024});
  Tensor m64 = cast(m, DType::f64);
  for (const Axes& axes : {Axes{0}, Axes{1}}) {
    std::vector<double> got = sum(m, axes).to_vector<double>(), want = sum(m64, axes).to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-3) << i;
    got = max(m, axes).to_vector<double>();
    want = max(m64, axes).to_vector<double>();
    EXPECT_EQ(got, want);
  }
  // A few columns, many rows (a bias gradient's shape).
  Tensor tall = reshape(slice(x, 0, 0, 3 * 100000), {100000, 3});
  std::vector<double> got = sum(tall, {0}).to_vector<double>();
  std::vector<double> want = sum(cast(tall, DType::f64), {0}).to_vector<double>();
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(got[i], want[i], want[i] * 2e-6);
  // max over one long row and argmax agree.
  int64_t am = argmax(x, 0).item<int64_t>();
  EXPECT_EQ(x.to_vector<float>()[size_t(am)], max(x).item<float>());
  // Results are independent of how the work is split: equal inputs give equal sums.
  EXPECT_EQ(sum(x).item<float>(), sum(clone(x)).item<float>());
}

// ---- gradients -------------------------------------------------------------------------

TEST(ReduceGrad, GradcheckOverAxisSets) {
  Tensor x = randn64({2, 3, 4}, 31);
  Generator gen(32);
  Tensor xp = uniform({2, 3, 4}, 0.5, 1.5, DType::f64, Device::cpu(), &gen);  // prod: away from zero
  for (const Axes& axes : {Axes{0}, Axes{-1}, Axes{0, 2}, Axes{}})
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(shape_str(axes) + (keepdim ? " keepdim" : ""));
      expect_gradcheck([&](const std::vector<Tensor>& in) { return sum(in[0], axes, keepdim); }, {x});
      expect_gradcheck([&](const std::vector<Tensor>& in) { return mean(in[0], axes, keepdim); }, {x});
      expect_gradcheck([&](const std::vector<Tensor>& in) { return max(in[0], axes, keepdim); }, {x});
      expect_gradcheck([&](const std::vector<Tensor>& in) { return min(in[0], axes, keepdim); }, {x});
      expect_gradcheck([&](const std::vector<Tensor>& in) { return prod(in[0], axes, keepdim); }, {xp});
      expect_gradcheck([&](const std::vector<Tensor>& in) { return var(in[0], axes, keepdim); }, {x});
      expect_gradcheck([&](const std::vector<Tensor>& in) { return var(in[0], axes, keepdim, 0); }, {x});
      expect_gradcheck([&](const std::vector<Tensor>& in) { return logsumexp(in[0], axes, keepdim); }, {x});
    }
  // Non-contiguous input.
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum(transpose(in[0], 0, 2), {1}); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return max(slice(in[0], 2, 0, 4, 2), {0, 2}); }, {x});
}

TEST(ReduceGrad, MaxTiesSplitEvenly) {
  Tensor x = tensor({1, 3, 3, 2, 2, 2}, {2, 3}, DType::f64);
  x.requires_grad_();
  sum(max(x, {1})).backward();
  expect_values(x.grad(), {0, 0.5, 0.5, 1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-15);
  Tensor y = tensor({4, 4, 1}, {3}, DType::f64);
  y.requires_grad_();
  min(y).backward();
  expect_values(y.grad(), {0, 0, 1}, 0);
  Tensor z = tensor({5, 5}, {2}, DType::f64);
  z.requires_grad_();
  max(z).backward();
  expect_values(z.grad(), {0.5, 0.5}, 0);
}

TEST(ReduceGrad, ProdWithZeros) {
  // d prod/dx_i = product of the others, also where inputs are zero.
  Tensor x = tensor({2, 0, 3, 0, 0, 5, 4, 1, 2}, {3, 3}, DType::f64);
  x.requires_grad_();
  sum(prod(x, {1})).backward();
  expect_values(x.grad(), {0, 6, 0, 0, 0, 0, 2, 8, 4}, 0);
  Tensor y = tensor({3, 0, 2}, {3}, DType::f64);
  expect_gradcheck([](const std::vector<Tensor>& in) { return prod(in[0]); }, {y});
  Tensor s = scalar(0.0, DType::f64);
  s.requires_grad_();
  prod(s).backward();
  EXPECT_EQ(s.grad().item<double>(), 1.0);
}

TEST(ReduceGrad, SumGradIsDenseAndOwned) {
  Tensor x = randn64({3, 4}, 1);
  x.requires_grad_();
  sum(x).backward();
  EXPECT_TRUE(x.grad().is_contiguous());
  EXPECT_EQ(x.grad().strides(), (Strides{4, 1}));
  double* g = x.grad().data<double>();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(g[i], 1.0);
}

// ---- errors ---------------------------------------------------------------------------

TEST(ReduceErrors, MessagesNameTheOp) {
  Tensor x = zeros({2, 3});
  EXPECT_ERROR(sum(x, {2}), "[sum] axis 2 is out of range for a tensor of 2 dimensions");
  EXPECT_ERROR(sum(x, {-3}), "[sum] axis -3 is out of range");
  EXPECT_ERROR(sum(x, {1, -1}), "[sum] axis repeated");
  EXPECT_ERROR(mean(x, {0, 0}), "[mean] axis repeated");
  EXPECT_ERROR(max(x, {5}), "[max]");
  EXPECT_ERROR(min(x, {5}), "[min]");
  EXPECT_ERROR(prod(x, {5}), "[prod]");
  EXPECT_ERROR(var(x, {5}), "[var]");
  EXPECT_ERROR(logsumexp(x, {5}), "[logsumexp]");
  EXPECT_ERROR(argmax(x, 2), "[argmax] axis 2 is out of range");
  EXPECT_ERROR(argmin(x, -3), "[argmin]");
  EXPECT_ERROR(max(zeros({0, 3}), {0}), "[max] reduction over an empty dimension");
  EXPECT_ERROR(min(zeros({0})), "[min]");
  EXPECT_ERROR(argmax(zeros({2, 0}), 1), "[argmax] cannot take the index of an empty dimension");
  EXPECT_ERROR(mean(tensor({1, 2}, {2}, DType::i64)), "[mean] expects a floating-point tensor");
  EXPECT_ERROR(var(tensor({1, 2}, {2}, DType::i32)), "[var]");
  EXPECT_ERROR(logsumexp(tensor({1, 2}, {2}, DType::i32), {0}), "[logsumexp]");
  EXPECT_ERROR(max(tensor({1, 0}, {2}, DType::b8)), "[max]");
  EXPECT_ERROR(argmax(tensor({1, 0}, {2}, DType::b8), 0), "[argmax]");
}
