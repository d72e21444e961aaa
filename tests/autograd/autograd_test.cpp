// Tests for the autograd engine (ember/autograd): .grad accumulation,
// retain_graph, no_grad, detach, leaf rules, seeds, diamonds, ember::grad with
// allow_unused, retain_grad, freeing of the graph, and integer outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "ember/autograd/node.h"
#include "ember/ember.h"
#include "test_util.h"

using namespace ember;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Tensor leaf(const std::vector<double>& v, const Shape& s) {
  Tensor t = tensor(v, s, DType::f64);
  t.requires_grad_();
  return t;
}

std::vector<double> dv(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace

TEST(Autograd, LeafGradientsAndAccumulationOverTwoBackwards) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor w = leaf({4, 5, 6}, {3});
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(x.grad().defined());
  Tensor y = sum(x * w);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  y.backward();
  EXPECT_EQ(dv(x.grad()), (std::vector<double>{4, 5, 6}));
  EXPECT_EQ(dv(w.grad()), (std::vector<double>{1, 2, 3}));
  Tensor first = x.grad();
  sum(x * x).backward();  // accumulates: 4 + 2*1, ...
  EXPECT_EQ(dv(x.grad()), (std::vector<double>{6, 9, 12}));
  // Accumulation is out of place: a gradient handed out earlier does not change.
  EXPECT_EQ(dv(first), (std::vector<double>{4, 5, 6}));
  x.set_grad(Tensor());
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  EXPECT_EQ(dv(x.grad()), (std::vector<double>{1, 1, 1}));
}

TEST(Autograd, GradsAreDenseOwnedAndNotAliased) {
  // add hands one cotangent to both inputs; sum's is a stride-0 broadcast; a
  // user seed must not be adopted. Each leaf's .grad is its own dense tensor.
  Tensor a = leaf({1, 2}, {2}), b = leaf({3, 4}, {2});
  sum(a + b).backward();
  EXPECT_NE(a.grad().storage(), b.grad().storage());
  EXPECT_TRUE(a.grad().is_contiguous());
  a.grad().data<double>()[0] = 100;  // an optimizer may write in place
  EXPECT_EQ(dv(b.grad()), (std::vector<double>{1, 1}));
  Tensor c = leaf({1, 2, 3}, {3});
  Tensor seed = tensor({7, 8, 9}, {3}, DType::f64);
  (c * 1.0).backward(seed);
  EXPECT_NE(c.grad().storage(), seed.storage());
  seed.data<double>()[0] = 0;
  EXPECT_EQ(dv(c.grad()), (std::vector<double>{7, 8, 9}));
  Tensor d = leaf({1, 2, 3, 4}, {2, 2});
  sum(broadcast_to(d, {3, 2, 2})).backward();
  EXPECT_EQ(d.grad().strides(), (Strides{2, 1}));
  EXPECT_EQ(dv(d.grad()), (std::vector<double>{3, 3, 3, 3}));
}

TEST(Autograd, RetainGraph) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = sum(exp(x) * x);
  y.backward({}, /*retain_graph=*/true);
  std::vector<double> g1 = dv(x.grad());
  y.backward();  // allowed: the graph was retained
  std::vector<double> g2 = dv(x.grad());
  for (size_t i = 0; i < 2; ++i) EXPECT_DOUBLE_EQ(g2[i], 2 * g1[i]);
  // Now the graph is freed: a third backward is an error that says what to do.
  std::string msg = error_of([&] { y.backward(); });
  EXPECT_EQ(msg.rfind("[backward]", 0), 0u) << msg;
  EXPECT_NE(msg.find("retain_graph"), std::string::npos) << msg;
  EXPECT_NE(msg.find("second time"), std::string::npos) << msg;
  // The same for ember::grad.
  Tensor z = sum(x * x);
  grad({z}, {x});
  msg = error_of([&] { grad({z}, {x}); });
  EXPECT_NE(msg.find("retain_graph"), std::string::npos) << msg;
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = leaf({1, 2}, {2});
  {
    NoGradGuard guard;
    EXPECT_FALSE(GradMode::enabled());
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      GradModeGuard on(true);
      EXPECT_TRUE((x * 2.0).requires_grad());
    }
    EXPECT_FALSE(GradMode::enabled());
  }
  EXPECT_TRUE(GradMode::enabled());
  EXPECT_TRUE((x * 2.0).requires_grad());
  // A tensor computed under no_grad is a constant: backward from it is an error.
  Tensor c;
  {
    NoGradGuard guard;
    c = sum(x * x);
  }
  EXPECT_ERROR(c.backward(), "[backward] output 0 does not require grad");
}

TEST(Autograd, DetachCutsTheGraphButSharesData) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = x * 3.0;
  Tensor d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.storage(), y.storage());
  EXPECT_EQ(dv(d), (std::vector<double>{3, 6}));
  // Gradient flows only through the non-detached path.
  sum(y * d).backward();  // d(3x * const)/dx = 3 * const
  EXPECT_EQ(dv(x.grad()), (std::vector<double>{9, 18}));
}

TEST(Autograd, LeafRules) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = x * 2.0;
  EXPECT_ERROR(y.requires_grad_(), "[requires_grad_] can only be set on leaf tensors");
  EXPECT_ERROR(y.requires_grad_(false), "[requires_grad_]");
  EXPECT_ERROR(tensor({1, 2}, {2}, DType::i64).requires_grad_(),
               "[requires_grad_] only floating-point tensors can require gradients, got int64");
  Tensor z = tensor({1}, {1});
  z.requires_grad_().requires_grad_(false);
  EXPECT_FALSE(z.requires_grad());
  EXPECT_ERROR(x.set_grad(zeros({3}, DType::f64)), "[set_grad] gradient shape [3] does not match");
}

TEST(Autograd, SeedsAndNonScalarOutputs) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = x * x;
  EXPECT_ERROR(y.backward(), "[backward] a seed gradient is needed for a non-scalar output of shape [3]");
  EXPECT_ERROR(y.backward(zeros({2}, DType::f64)), "[backward] seed gradient shape [2] does not match output shape [3]");
  EXPECT_ERROR(grad({y}, {x}), "[grad] a seed gradient is needed");
  EXPECT_ERROR(backward({y}, {Tensor(), Tensor()}), "[backward] 2 seed gradients given for 1 outputs");
  y.backward(tensor({1, 10, 100}, {3}, DType::f64));
  EXPECT_EQ(dv(x.grad()), (std::vector<double>{2, 40, 600}));
  // A float32 seed for a float64 output: the gradient arrives in the leaf's dtype.
  Tensor a = leaf({1, 2}, {2});
  (a * 2.0).backward(tensor({1, 1}, {2}, DType::f32));
  EXPECT_EQ(a.grad().dtype(), DType::f64);
  EXPECT_EQ(dv(a.grad()), (std::vector<double>{2, 2}));
  // Several roots at once.
  Tensor b = leaf({1, 2}, {2});
  backward({sum(b * b), sum(b * 3.0)});
  EXPECT_EQ(dv(b.grad()), (std::vector<double>{5, 7}));
  // A leaf as the root: its gradient is the seed.
  Tensor s = leaf({4}, {});
  s.backward();
  EXPECT_EQ(s.grad().item<double>(), 1.0);
}

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = leaf({2, 3}, {2});
  Tensor a = x * x;      // used twice below
  Tensor b = exp(a);
  Tensor c = a * 3.0;
  Tensor y = sum(b + c);  // dy/dx = (exp(x^2) + 3) * 2x
  y.backward();
  std::vector<double> g = dv(x.grad());
  EXPECT_NEAR(g[0], (std::exp(4.0) + 3) * 4, 1e-9);
  EXPECT_NEAR(g[1], (std::exp(9.0) + 3) * 6, 1e-6);
  // One tensor as both operands of one op.
  Tensor z = leaf({3}, {1});
  sum(z * z).backward();
  EXPECT_EQ(z.grad().item<double>(), 6.0);
  // Deep chain (ordering by creation).
  Tensor w = leaf({1.5}, {1});
  Tensor acc = w;
  for (int i = 0; i < 50; ++i) acc = acc * 1.01 + w * 0.0;
  sum(acc).backward();
  EXPECT_NEAR(w.grad().item<double>(), std::pow(1.01, 50), 1e-12);
}

TEST(Autograd, GradFunctionAndAllowUnused) {
  Tensor x = leaf({1, 2}, {2}), y = leaf({3, 4}, {2}), unused = leaf({0}, {1});
  Tensor out = sum(x * y);
  std::vector<Tensor> g = grad({out}, {x, y}, {}, /*retain_graph=*/true);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(dv(g[0]), (std::vector<double>{3, 4}));
  EXPECT_EQ(dv(g[1]), (std::vector<double>{1, 2}));
  EXPECT_FALSE(x.grad().defined());  // grad() returns, it does not accumulate
  EXPECT_FALSE(g[0].requires_grad());  // no create_graph: plain values
  EXPECT_ERROR(grad({out}, {x, unused}, {}, true), "[grad] input 1 was not used to compute the outputs");
  std::vector<Tensor> gu = grad({out}, {x, unused}, {}, true, false, /*allow_unused=*/true);
  EXPECT_TRUE(gu[0].defined());
  EXPECT_FALSE(gu[1].defined());
  EXPECT_ERROR(grad({out}, {tensor({1}, {1})}, {}, true), "[grad] input 0 does not require grad");
  // Gradient with respect to an intermediate tensor.
  Tensor mid = x * 2.0;
  Tensor top = sum(mid * mid);
  EXPECT_EQ(dv(grad({top}, {mid})[0]), (std::vector<double>{4, 8}));
}

TEST(Autograd, RetainGradOnNonLeaf) {
  Tensor x = leaf({1, 2}, {2});
  Tensor mid = x * 3.0;
  Tensor other = x + 1.0;
  mid.retain_grad();
  sum(mid * mid).backward();
  ASSERT_TRUE(mid.grad().defined());
  EXPECT_EQ(dv(mid.grad()), (std::vector<double>{6, 12}));
  EXPECT_EQ(dv(x.grad()), (std::vector<double>{18, 36}));
  EXPECT_FALSE(other.grad().defined());  // non-leaves without retain_grad keep nothing
  // A non-leaf used twice gets the sum of both cotangents.
  Tensor y = leaf({2}, {1});
  Tensor m = y * y;
  m.retain_grad();
  sum(m * 2.0 + m * 3.0).backward();
  EXPECT_EQ(m.grad().item<double>(), 5.0);
}

TEST(Autograd, GraphIsFreedAfterBackward) {
  std::weak_ptr<Node> inner, inner_retained;
  Tensor x = leaf({1, 2}, {2});
  Tensor y;
  {
    Tensor mid = exp(x);
    inner = mid.grad_fn();
    y = sum(mid * 2.0);
  }
  EXPECT_FALSE(inner.expired());  // the graph is alive while y may still backward
  y.backward();
  EXPECT_TRUE(inner.expired()) << "backward without retain_graph must release the graph";
  EXPECT_TRUE(y.grad_fn()->released());
  // With retain_graph the graph stays until its outputs go away.
  Tensor z;
  {
    Tensor mid = exp(x);
    inner_retained = mid.grad_fn();
    z = sum(mid);
  }
  z.backward({}, true);
  EXPECT_FALSE(inner_retained.expired());
  z = Tensor();
  EXPECT_TRUE(inner_retained.expired());
  // Dropping an output without backward frees its graph too.
  std::weak_ptr<Node> dropped;
  {
    Tensor w = tanh(x);
    dropped = w.grad_fn();
  }
  EXPECT_TRUE(dropped.expired());
}

TEST(Autograd, IntegerAndBoolOutputsDoNotRequireGrad) {
  Tensor x = leaf({1.5, -2}, {2});
  EXPECT_FALSE(argmax(x, 0).requires_grad());
  EXPECT_FALSE(gt(x, scalar(0.0, DType::f64)).requires_grad());
  EXPECT_FALSE(cast(x, DType::i32).requires_grad());
  EXPECT_EQ(cast(x, DType::i32).grad_fn(), nullptr);
  EXPECT_TRUE(cast(x, DType::f32).requires_grad());
  // An integer-valued path contributes nothing; the float path still works.
  Tensor y = sum(x * cast(cast(x, DType::i64), DType::f64));
  y.backward();
  EXPECT_EQ(dv(x.grad()), (std::vector<double>{1, -2}));
  // Mixed precision: a float32 op on float64 leaves (cast inside) returns float64 gradients.
  Tensor h = leaf({1, 2}, {2});
  sum(cast(h, DType::bf16) * 2.0).backward();
  EXPECT_EQ(h.grad().dtype(), DType::f64);
  EXPECT_EQ(dv(h.grad()), (std::vector<double>{2, 2}));
}

TEST(Autograd, GradcheckReportsAWrongGradient) {
  // gradcheck itself must catch a mismatch: feed it a function whose forward
  // does not match its recorded graph (a detached term changes the value only).
  Tensor x = tensor({0.5, 1.5}, {2}, DType::f64);
  GradcheckResult good = gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0]; }, {x});
  EXPECT_TRUE(good.ok) << good.message;
  GradcheckResult bad =
      gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0].detach(); }, {x});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.message.find("input 0"), std::string::npos) << bad.message;
}
