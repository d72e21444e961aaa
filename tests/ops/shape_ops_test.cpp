// Tests for the movement ops (ember/ops/shape_ops.h): values, that views share
// storage (no copy) and see writes to their base, the copy fallback of
// reshape, float64 gradient checks through views, and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "ember/ember.h"
#include "test_util.h"

using namespace ember;

namespace {

Tensor range(int64_t n, const Shape& s, DType dt = DType::f32) { return reshape(arange(0.0, double(n), 1.0, dt), s); }

std::vector<float> fv(const Tensor& t) { return t.to_vector<float>(); }
std::vector<float> fl(std::initializer_list<float> v) { return v; }

void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& in) {
  GradcheckResult r = gradcheck(fn, in);
  EXPECT_TRUE(r.ok) << r.message;
}

Tensor randn64(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, DType::f64, Device::cpu(), &g);
}

bool shares(const Tensor& a, const Tensor& b) { return a.storage() == b.storage(); }

}  // namespace

TEST(ShapeOps, ReshapeAndView) {
  Tensor x = range(24, {2, 3, 4});
  Tensor r = reshape(x, {4, -1});
  EXPECT_EQ(r.shape(), (Shape{4, 6}));
  EXPECT_TRUE(shares(r, x));
  EXPECT_EQ(fv(r), fv(x));
  EXPECT_EQ(reshape(x, {-1}).shape(), (Shape{24}));
  EXPECT_EQ(reshape(x, {2, -1, 2}).shape(), (Shape{2, 6, 2}));
  EXPECT_EQ(reshape(x, {1, 24, 1}).strides()[1], 1);
  EXPECT_TRUE(reshape(x, {2, 3, 4}).same(x));  // the same shape is the same tensor
  // A 0-d tensor to and from shape [1].
  Tensor s = scalar(5);
  EXPECT_EQ(reshape(s, {1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(reshape(reshape(s, {1}), {}).item<float>(), 5.0f);
  // Zero elements.
  EXPECT_EQ(reshape(zeros({0, 3}), {3, 0, 5}).shape(), (Shape{3, 0, 5}));
  EXPECT_EQ(reshape(zeros({0, 3}), {-1, 3}).shape(), (Shape{0, 3}));
}

TEST(ShapeOps, ReshapeOfStridedViewsViewsWhenPossibleCopiesOtherwise) {
  Tensor x = range(24, {2, 3, 4});
  // Merging the two leading dims of a column slice stays a view.
  Tensor sl = slice(x, 2, 0, 2);  // [2, 3, 2], strides [12, 4, 1]
  Tensor v = reshape(sl, {6, 2});
  EXPECT_TRUE(shares(v, x));
  EXPECT_EQ(fv(v), fl({0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21}));
  // Splitting a dim of a transposed tensor is a view too.
  Tensor t = transpose(range(12, {3, 4}), 0, 1);  // [4, 3]
  Tensor split = reshape(t, {2, 2, 3});
  EXPECT_TRUE(shares(split, t));
  EXPECT_EQ(fv(split), fv(t));
  // Flattening a transposed tensor must copy, in logical order.
  Tensor f = reshape(t, {12});
  EXPECT_FALSE(shares(f, t));
  EXPECT_TRUE(f.is_contiguous());
  EXPECT_EQ(fv(f), fl({0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  // Size-1 dims with arbitrary strides do not block a view.
  Tensor one = slice(range(12, {3, 4}), 0, 1, 2);  // [1, 4] with offset
  EXPECT_TRUE(shares(reshape(one, {2, 2}), one));
  EXPECT_EQ(fv(reshape(one, {2, 2})), fl({4, 5, 6, 7}));
  // Expanded (stride-0) dims copy when merged.
  Tensor e = broadcast_to(tensor({1, 2}, {2, 1}), {2, 3});
  EXPECT_EQ(fv(reshape(e, {6})), fl({1, 1, 1, 2, 2, 2}));
}

TEST(ShapeOps, ViewsSeeWritesToTheirBase) {
  Tensor x = range(12, {3, 4});
  Tensor r = reshape(x, {12});
  Tensor t = transpose(x, 0, 1);
  Tensor s = slice(x, 1, 1, 4, 2);
  Tensor sel = select(x, 0, -1);
  Tensor n = narrow(x, 0, 1, 1);
  Tensor e = expand(unsqueeze(select(x, 1, 0), 1), {-1, 3});
  Tensor f = flatten(x);
  Tensor u = unsqueeze(x, 0);
  Tensor p = permute(x, {1, 0});
  for (const Tensor& v : {r, t, s, sel, n, e, f, u, p}) EXPECT_TRUE(shares(v, x));
  float* d = x.data<float>();
  d[5] = 100;   // x[1, 1]
  d[11] = -1;   // x[2, 3]
  d[8] = 50;    // x[2, 0]
  EXPECT_EQ(fv(r)[5], 100.0f);
  EXPECT_EQ(fv(t)[1 * 3 + 1], 100.0f);
  EXPECT_EQ(fv(s), fl({1, 3, 100, 7, 9, -1}));
  EXPECT_EQ(fv(sel), fl({50, 9, 10, -1}));
  EXPECT_EQ(fv(n), fl({4, 100, 6, 7}));
  EXPECT_EQ(fv(e), fl({0, 0, 0, 4, 4, 4, 50, 50, 50}));
  EXPECT_EQ(fv(f)[11], -1.0f);
  EXPECT_EQ(fv(p)[3 * 3 + 2], -1.0f);
  // And writes through a view's pointer reach the base.
  s.data<float>()[0] = 77;  // element 0 of the view is x[0, 1]
  EXPECT_EQ(fv(x)[1], 77.0f);
  EXPECT_EQ(s.offset(), 1);
}

TEST(ShapeOps, PermuteTranspose) {
  Tensor x = range(24, {2, 3, 4});
  Tensor p = permute(x, {2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Strides{1, 12, 4}));
  std::vector<float> v = fv(p);
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(v[size_t(a * 6 + b * 3 + c)], float(b * 12 + c * 4 + a));
  EXPECT_EQ(permute(x, {-1, -3, -2}).shape(), (Shape{4, 2, 3}));
  EXPECT_TRUE(permute(x, {0, 1, 2}).same(x));
  EXPECT_EQ(transpose(x, -1, 0).shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(fv(transpose(transpose(x, 0, 2), 0, 2)), fv(x));
  EXPECT_EQ(transpose(scalar(2), 0, 0).item<float>(), 2.0f);
}

TEST(ShapeOps, SliceWithStepsAndNegativeBounds) {
  Tensor x = arange(0.0, 10.0, 1.0, DType::f32);
  EXPECT_EQ(fv(slice(x, 0, 2, 8, 3)), fl({2, 5}));
  EXPECT_EQ(fv(slice(x, 0, 1, 10, 3)), fl({1, 4, 7}));
  EXPECT_EQ(fv(slice(x, 0, -3, 10)), fl({7, 8, 9}));
  EXPECT_EQ(fv(slice(x, 0, -100, 2)), fl({0, 1}));    // clipped, as in Python
  EXPECT_EQ(fv(slice(x, 0, 8, 100)), fl({8, 9}));
  EXPECT_EQ(fv(slice(x, 0, 0, -8)), fl({0, 1}));
  EXPECT_EQ(fv(slice(x, 0, -4, -1, 2)), fl({6, 8}));
  EXPECT_EQ(slice(x, 0, 5, 3).numel(), 0);           // empty
  EXPECT_EQ(slice(x, 0, 20, 30).numel(), 0);
  EXPECT_TRUE(slice(x, 0, 0, 10).same(x));
  Tensor m = range(20, {4, 5});
  Tensor s = slice(slice(m, 1, 4, 5), 0, 1, 4, 2);  // column 4, rows 1 and 3
  EXPECT_EQ(s.shape(), (Shape{2, 1}));
  EXPECT_EQ(fv(s), fl({9, 19}));
  EXPECT_EQ(fv(slice(m, -1, 0, 5, 4)), fl({0, 4, 5, 9, 10, 14, 15, 19}));
  // slice of a slice keeps composing offsets and strides.
  Tensor ss = slice(slice(x, 0, 1, 10, 2), 0, 1, 5, 2);  // [1,3,5,7,9] -> [3, 7]
  EXPECT_EQ(fv(ss), fl({3, 7}));
  EXPECT_EQ(ss.strides(), (Strides{4}));
  EXPECT_EQ(ss.offset(), 3);
}

TEST(ShapeOps, SelectNarrowExpandSqueezeUnsqueezeFlatten) {
  Tensor x = range(24, {2, 3, 4});
  EXPECT_EQ(select(x, 1, 2).shape(), (Shape{2, 4}));
  EXPECT_EQ(fv(select(x, 1, 2)), fl({8, 9, 10, 11, 20, 21, 22, 23}));
  EXPECT_EQ(fv(select(x, -1, -1)), fl({3, 7, 11, 15, 19, 23}));
  EXPECT_EQ(select(select(select(x, 0, 1), 0, 2), 0, 3).item<float>(), 23.0f);
  EXPECT_EQ(fv(narrow(x, 2, 1, 2)), fl({1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}));
  EXPECT_EQ(fv(narrow(x, 0, -1, 1)), fv(select(x, 0, 1)));
  EXPECT_EQ(narrow(x, 1, 3, 0).numel(), 0);
  Tensor c = tensor({1, 2, 3}, {3, 1});
  Tensor e = expand(c, {2, -1, 4});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides(), (Strides{0, 1, 0}));
  EXPECT_EQ(fv(select(e, 0, 1)), fl({1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}));
  EXPECT_EQ(broadcast_to(scalar(7), {2, 2}).strides(), (Strides{0, 0}));
  EXPECT_EQ(fv(broadcast_to(scalar(7), {2, 2})), fl({7, 7, 7, 7}));
  Tensor sq = zeros({1, 3, 1, 2});
  EXPECT_EQ(squeeze(sq).shape(), (Shape{3, 2}));
  EXPECT_EQ(squeeze(sq, {0}).shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(squeeze(sq, {-2, 0}).shape(), (Shape{3, 2}));
  EXPECT_EQ(squeeze(scalar(1), {0}).shape(), Shape{});
  EXPECT_EQ(unsqueeze(x, -1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(unsqueeze(x, 1).shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(unsqueeze(scalar(1), 0).shape(), (Shape{1}));
  EXPECT_EQ(flatten(x).shape(), (Shape{24}));
  EXPECT_EQ(flatten(x, 1).shape(), (Shape{2, 12}));
  EXPECT_EQ(flatten(x, 0, 1).shape(), (Shape{6, 4}));
  EXPECT_EQ(flatten(x, -2, -1).shape(), (Shape{2, 12}));
  EXPECT_EQ(flatten(scalar(3)).shape(), (Shape{1}));
  EXPECT_EQ(fv(flatten(transpose(x, 0, 2), 1)), fv(reshape(contiguous(transpose(x, 0, 2)), {4, 6})));
}

// ---- gradients through views ---------------------------------------------------------------

TEST(ShapeOpsGrad, GradcheckThroughEveryView) {
  Tensor x = randn64({2, 3, 4}, 41);
  std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> views{
      {"reshape", [](const Tensor& t) { return reshape(t, {4, -1}); }},
      {"reshape copy", [](const Tensor& t) { return reshape(transpose(t, 0, 2), {-1}); }},
      {"flatten", [](const Tensor& t) { return flatten(t, 1); }},
      {"permute", [](const Tensor& t) { return permute(t, {2, 0, 1}); }},
      {"transpose", [](const Tensor& t) { return transpose(t, 1, 2); }},
      {"slice", [](const Tensor& t) { return slice(t, 2, 1, 4, 2); }},
      {"slice negative", [](const Tensor& t) { return slice(t, -2, -2, 3); }},
      {"narrow", [](const Tensor& t) { return narrow(t, 0, 1, 1); }},
      {"select", [](const Tensor& t) { return select(t, 1, -1); }},
      {"expand", [](const Tensor& t) { return expand(unsqueeze(t, 0), {3, -1, -1, -1}); }},
      {"broadcast_to", [](const Tensor& t) { return broadcast_to(slice(t, 1, 0, 1), {2, 5, 4}); }},
      {"squeeze", [](const Tensor& t) { return squeeze(slice(t, 0, 1, 2)); }},
      {"unsqueeze", [](const Tensor& t) { return unsqueeze(t, -2); }},
      {"chain", [](const Tensor& t) { return select(slice(transpose(t, 0, 2), 0, 0, 4, 3), 2, 1); }},
      {"two slices summed", [](const Tensor& t) { return slice(t, 2, 0, 2) * slice(t, 2, 2, 4); }},
  };
  for (const auto& [name, f] : views) {
    SCOPED_TRACE(name);
    expect_gradcheck([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
    expect_gradcheck([&](const std::vector<Tensor>& in) { return f(in[0]) * f(in[0]); }, {x});
  }
}

TEST(ShapeOpsGrad, SliceBackwardPlacesGradientAndIsDifferentiable) {
  Tensor x = tensor({1, 2, 3, 4, 5, 6}, {6}, DType::f64);
  x.requires_grad_();
  Tensor y = slice(x, 0, 1, 6, 2);  // x[1], x[3], x[5]
  sum(y * tensor({10, 20, 30}, {3}, DType::f64)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 10, 0, 20, 0, 30}));
  // The gradient of a slice is itself differentiable (second order through slice backward).
  Tensor z = tensor({1, 2, 3, 4}, {4}, DType::f64);
  z.requires_grad_();
  Tensor g = grad({sum(pow(slice(z, 0, 1, 3), 3.0))}, {z}, {}, false, true)[0];  // 3 z^2 on [1, 3)
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{0, 12, 27, 0}));
  Tensor h = grad({sum(g)}, {z})[0];  // 6 z on [1, 3)
  EXPECT_EQ(h.to_vector<double>(), (std::vector<double>{0, 12, 18, 0}));
}

// ---- errors ---------------------------------------------------------------------------------

TEST(ShapeOpsErrors, MessagesNameTheOp) {
  Tensor x = zeros({2, 3});
  EXPECT_ERROR(reshape(x, {4}), "[reshape] cannot reshape [2, 3] (6 elements) to [4]");
  EXPECT_ERROR(reshape(x, {-1, -1}), "[reshape] only one dimension can be -1");
  EXPECT_ERROR(reshape(x, {4, -1}), "[reshape] cannot infer -1");
  EXPECT_ERROR(reshape(x, {-2, -3}), "[reshape] invalid dimension -2");
  EXPECT_ERROR(reshape(zeros({0, 3}), {3, 0, -1}), "[reshape] cannot infer -1");  // ambiguous, as in PyTorch
  EXPECT_ERROR(flatten(x, 1, 0), "[flatten] start axis 1 is after end axis 0");
  EXPECT_ERROR(flatten(x, 2), "[flatten]");
  EXPECT_ERROR(permute(x, {0}), "[permute] got 1 dims for a tensor of 2 dimensions");
  EXPECT_ERROR(permute(x, {1, 1}), "[permute] dimension 1 repeated");
  EXPECT_ERROR(permute(x, {0, 2}), "[permute]");
  EXPECT_ERROR(transpose(x, 0, 2), "[transpose] axis 2 is out of range");
  EXPECT_ERROR(transpose(scalar(1), 0, 1), "[transpose]");
  EXPECT_ERROR(slice(x, 2, 0, 1), "[slice] axis 2 is out of range");
  EXPECT_ERROR(slice(x, 0, 0, 1, 0), "[slice] step must be positive, got 0");
  EXPECT_ERROR(slice(x, 0, 1, 0, -1), "[slice]");
  EXPECT_ERROR(slice(scalar(1), 0, 0, 1), "[slice] needs a tensor with at least one dimension");
  EXPECT_ERROR(narrow(x, 1, 2, 2), "[narrow] range [2, 4) is outside dimension 1 of size 3");
  EXPECT_ERROR(narrow(x, 1, 0, -1), "[narrow]");
  EXPECT_ERROR(narrow(scalar(1), 0, 0, 1), "[narrow]");
  EXPECT_ERROR(select(x, 0, 2), "[select] index 2 is out of range for dimension 0 of size 2");
  EXPECT_ERROR(select(x, 1, -4), "[select]");
  EXPECT_ERROR(select(scalar(1), 0, 0), "[select]");
  EXPECT_ERROR(broadcast_to(x, {3, 3}), "[broadcast_to] cannot broadcast shape [2, 3] to [3, 3]");
  EXPECT_ERROR(broadcast_to(x, {3}), "[broadcast_to]");
  EXPECT_ERROR(expand(x, {-1, 2, 3}), "[expand] -1 is not allowed for a new leading dimension");
  EXPECT_ERROR(expand(x, {4, 3}), "[broadcast_to]");
  EXPECT_ERROR(squeeze(x, {0}), "[squeeze] dimension 0 has size 2, not 1");
  EXPECT_ERROR(squeeze(x, {2}), "[squeeze]");
  EXPECT_ERROR(unsqueeze(x, 3), "[unsqueeze] axis 3 is out of range");
  EXPECT_ERROR(unsqueeze(x, -4), "[unsqueeze]");
  EXPECT_ERROR(scalar(1).shape(0), "[shape]");
}
