// Tests for the fused nn ops softmax, log_softmax, layer_norm, rms_norm and
// dropout: values against PyTorch and composite references, float64 gradient
// checks (first and second order) and argument errors. Cross-entropy and
// attention have their own files (nn_loss_test.cpp, nn_attention_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ember/autograd/engine.h"
#include "ember/autograd/grad_mode.h"
#include "ember/autograd/gradcheck.h"
#include "ember/ember.h"

namespace ember {
namespace {

void expect_values(const Tensor& t, const std::vector<double>& want, double tol) {
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

void expect_close(const Tensor& a, const Tensor& b, double tol) {
  ASSERT_EQ(a.shape(), b.shape());
  expect_values(a, b.to_vector<double>(), tol);
}

Tensor rnd(const Shape& shape, uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return randn(shape, dtype, Device::cpu(), &gen);
}

template <typename F>
void expect_error(F&& f, const std::string& op) {
  try {
    f();
    ADD_FAILURE() << "expected an error from " << op;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[" + op + "]"), std::string::npos) << e.what();
  }
}

void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& in,
                      double atol = 1e-6) {
  GradcheckResult r = gradcheck(fn, in, 1e-6, atol, 1e-4);
  EXPECT_TRUE(r.ok) << r.message;
}

// d<seed, f(x...)>/d(x_k) with create_graph, so that it can be checked again.
Tensor first_grad(const Tensor& y, const Tensor& wrt, const Tensor& seed) {
  return grad({y}, {wrt}, {seed}, false, true)[0];
}

// ---------------------------------------------------------------- softmax

TEST(NnSoftmax, MatchesPyTorch) {
  Tensor x = tensor({1, 2, 3, -1, 0, 5}, {2, 3});
  expect_values(softmax(x), {0.0900305732, 0.2447284711, 0.6652409558, 0.0024561149, 0.0066764125, 0.9908674726},
                1e-6);
  expect_values(log_softmax(x), {-2.4076059644, -1.4076059644, -0.4076059644, -6.0091744846, -5.0091744846,
                                 -0.0091744846},
                1e-5);
}

TEST(NnSoftmax, AnyAxisMatchesComposite) {
  Tensor x = rnd({3, 4, 5}, 1) * 3.0;
  for (int64_t axis : {0, 1, 2, -1}) {
    Tensor lse = logsumexp(x, {axis}, true);
    expect_close(softmax(x, axis), exp(x - lse), 1e-12);
    expect_close(log_softmax(x, axis), x - lse, 1e-12);
  }
  // Non-contiguous input and a long last axis (exercises the vector loops) in float32.
  Tensor xt = transpose(rnd({40, 3}, 2, DType::f32), 0, 1);
  expect_close(softmax(xt, -1), exp(xt - logsumexp(xt, {-1}, true)), 1e-6);
  Tensor wide = rnd({2, 1000}, 3, DType::f32) * 10.0;
  expect_close(log_softmax(wide, 1), wide - logsumexp(wide, {1}, true), 1e-4);
}

TEST(NnSoftmax, StableAndSpecialValues) {
  Tensor big = tensor({1000, 1001, 1002}, {3});
  expect_values(softmax(big), {0.0900305732, 0.2447284711, 0.6652409558}, 1e-6);
  Tensor masked = tensor({0, -INFINITY, 0}, {3});
  expect_values(softmax(masked), {0.5, 0, 0.5}, 1e-7);
  EXPECT_NEAR(softmax(scalar(3.0)).item<double>(), 1.0, 0);
  Tensor h = cast(tensor({1, 2, 3}, {3}), DType::bf16);
  EXPECT_EQ(softmax(h).dtype(), DType::bf16);
  expect_values(softmax(h), {0.0900305732, 0.2447284711, 0.6652409558}, 4e-3);
}

TEST(NnSoftmax, Gradcheck) {
  for (int64_t axis : {-1, 1, 0}) {
    expect_gradcheck([axis](const std::vector<Tensor>& in) { return softmax(in[0], axis); }, {rnd({2, 3, 4}, 4)});
    expect_gradcheck([axis](const std::vector<Tensor>& in) { return log_softmax(in[0], axis); }, {rnd({2, 3, 4}, 5)});
  }
}

TEST(NnSoftmax, DoubleBackward) {
  for (bool log : {false, true}) {
    for (int64_t axis : {-1, 0}) {
      // Inputs x and the seed g: d/dx and d/dg of g . J(x) are both checked.
      auto fn = [log, axis](const std::vector<Tensor>& in) {
        GradModeGuard on(true);
        Tensor y = log ? log_softmax(in[0], axis) : softmax(in[0], axis);
        return first_grad(y, in[0], in[1]);
      };
      expect_gradcheck(fn, {rnd({3, 4}, 6), rnd({3, 4}, 7)});
    }
  }
}

TEST(NnSoftmax, Errors) {
  expect_error([] { softmax(zeros({2, 3}), 2); }, "softmax");
  expect_error([] { log_softmax(zeros({2, 3}, DType::i64)); }, "log_softmax");
}

// ------------------------------------------------------------ layer norm

TEST(NnNorm, LayerNormMatchesPyTorch) {
  Tensor x = tensor({1, 2, 3, 4, 2, 0, -1, 5}, {2, 4}, DType::f64).requires_grad_();
  Tensor w = tensor({1, 2, 0.5, -1}, {4}, DType::f64).requires_grad_();
  Tensor b = tensor({0.1, 0.2, 0.3, 0.4}, {4}, DType::f64).requires_grad_();
  Tensor g = tensor({1, -1, 2, 0.5, 0.3, 0.2, -0.4, 1}, {2, 4}, DType::f64);
  Tensor y = layer_norm(x, w, b, 1e-5);
  expect_values(y, {-1.2416354199689268, -0.694423613312618, 0.5236059033281545, -0.9416354199689269,
                    0.31821768240972714, -1.1093060944583628, -0.24554420602431787, -1.12752377686809},
                1e-9);
  y.backward(g);
  expect_values(x.grad(), {0.8049828619309807, -1.7441255093097303, 1.0733077993252669, -0.13416515194651707,
                           0.22133500958704794, 0.12157862791387394, -0.21198255005535838, -0.13093108744556348},
                1e-9);
  expect_values(w.grad(), {-1.276170115246009, 0.3162811972104728, 1.330858978132072, 2.1983414868525535}, 1e-9);
  expect_values(b.grad(), {1.3, -0.8, 1.6, 1.5}, 1e-12);
}

TEST(NnNorm, RmsNormMatchesPyTorch) {
  Tensor x = tensor({1, 2, 3, 4, 2, 0, -1, 5}, {2, 4}, DType::f64).requires_grad_();
  Tensor w = tensor({1, 2, 0.5, -1}, {4}, DType::f64).requires_grad_();
  Tensor g = tensor({1, -1, 2, 0.5, 0.3, 0.2, -0.4, 1}, {2, 4}, DType::f64);
  Tensor y = rms_norm(x, w, 1e-6);
  expect_values(y, {0.3651483473268884, 1.4605933893075536, 0.5477225209903326, -1.4605933893075536,
                    0.7302966946537768, 0.0, -0.1825741736634442, -1.825741736634442},
                1e-9);
  y.backward(g);
  expect_values(x.grad(), {0.3894915672362516, -0.6816102548350503, 0.4381780070549781, -0.08520129402599125,
                           0.21178602781739211, 0.14605933893075537, -0.1241504312750405, -0.10954453827857435},
                1e-9);
  expect_values(w.grad(), {0.5842373557230214, -0.7302966946537768, 2.3369494228920855, 2.5560384312882185}, 1e-9);
}

TEST(NnNorm, MatchesCompositeInFloat32AndBf16) {
  // A non-contiguous input: the kernels copy it first.
  Tensor x = transpose(rnd({96, 7, 5}, 8, DType::f32) * 4.0 + 3.0, 0, 2);
  ASSERT_FALSE(x.is_contiguous());
  Tensor w = rnd({96}, 9, DType::f32), b = rnd({96}, 10, DType::f32);
  Tensor mu = mean(x, {-1}, true);
  Tensor ref = (x - mu) * rsqrt(var(x, {-1}, true, 0) + 1e-5) * w + b;
  expect_close(layer_norm(x, w, b), ref, 2e-5);
  expect_close(layer_norm(x, w), ref - b, 2e-5);
  Tensor rref = x * rsqrt(mean(x * x, {-1}, true) + 1e-6) * w;
  expect_close(rms_norm(x, w), rref, 2e-5);
  Tensor xh = cast(x, DType::bf16);
  Tensor yh = layer_norm(xh, cast(w, DType::bf16), cast(b, DType::bf16));
  EXPECT_EQ(yh.dtype(), DType::bf16);
  expect_close(cast(yh, DType::f32), ref, 0.1);
}

TEST(NnNorm, Gradcheck) {
  Tensor x = rnd({3, 5}, 11), w = rnd({5}, 12), b = rnd({5}, 13);
  expect_gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); }, {x, w, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1]); }, {x, w});
  expect_gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), in[1]); }, {x, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0]); }, {rnd({2, 3, 4}, 14)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1]); }, {x, w});
  expect_gradcheck([](const std::vector<Tensor>& in) { return rms_norm(in[0]); }, {x});
}

// Second derivatives through NormBackward's vjp: each of dx, dweight and dbias
// is differentiated with respect to x, weight and the seed.
TEST(NnNorm, DoubleBackward) {
  for (bool rms : {false, true}) {
    for (int which = 0; which < (rms ? 2 : 3); ++which) {
      auto fn = [rms, which](const std::vector<Tensor>& in) {
        GradModeGuard on(true);
        const Tensor &x = in[0], &w = in[1], &b = in[2], &seed = in[3];
        Tensor y = rms ? rms_norm(x, w, 1e-6) : layer_norm(x, w, b, 1e-5);
        std::vector<Tensor> wrt{x, w};
        if (!rms) wrt.push_back(b);
        return grad({y}, wrt, {seed}, false, true)[size_t(which)];
      };
      expect_gradcheck(fn, {rnd({3, 4}, 15), rnd({4}, 16), rnd({4}, 17), rnd({3, 4}, 18)}, 1e-5);
    }
  }
  // Without affine parameters.
  auto plain = [](const std::vector<Tensor>& in) {
    GradModeGuard on(true);
    return first_grad(layer_norm(in[0]), in[0], in[1]);
  };
  expect_gradcheck(plain, {rnd({2, 5}, 19), rnd({2, 5}, 20)}, 1e-5);
}

TEST(NnNorm, Errors) {
  expect_error([] { layer_norm(zeros({2, 3}), zeros({4})); }, "layer_norm");
  expect_error([] { layer_norm(zeros({2, 3}), zeros({3}, DType::f64)); }, "layer_norm");
  expect_error([] { layer_norm(zeros({2, 3}), Tensor(), zeros({2})); }, "layer_norm");
  expect_error([] { layer_norm(scalar(1.0)); }, "layer_norm");
  expect_error([] { layer_norm(zeros({2, 3}, DType::i32)); }, "layer_norm");
  expect_error([] { layer_norm(zeros({2, 3}), Tensor(), Tensor(), -1.0); }, "layer_norm");
  expect_error([] { rms_norm(zeros({2, 3}), zeros({2, 3})); }, "rms_norm");
}

// --------------------------------------------------------------- dropout

TEST(NnDropout, ScalesKeptElementsAndReusesTheMask) {
  manual_seed(42);
  Tensor x = (ones({200, 50}) * 2.0).requires_grad_();
  Tensor y = dropout(x, 0.25);
  std::vector<float> v = y.to_vector<float>();
  int64_t kept = 0;
  for (float e : v) {
    EXPECT_TRUE(e == 0.0f || std::abs(e - 2.0f / 0.75f) < 1e-6f) << e;
    kept += e != 0.0f;
  }
  EXPECT_NEAR(double(kept) / double(v.size()), 0.75, 0.02);
  y.backward(ones({200, 50}));
  std::vector<float> gx = x.grad().to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_FLOAT_EQ(gx[i], v[i] == 0.0f ? 0.0f : 1.0f / 0.75f);
}

TEST(NnDropout, IdentityAndGradcheck) {
  Tensor x = rnd({3, 4}, 21, DType::f32);
  EXPECT_TRUE(dropout(x, 0.5, false).same(x));
  EXPECT_TRUE(dropout(x, 0.0).same(x));
  // A fixed seed inside fn gives the same mask on every evaluation.
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        manual_seed(7);
        return dropout(in[0], 0.4);
      },
      {rnd({4, 5}, 22)});
}

TEST(NnDropout, Errors) {
  expect_error([] { dropout(zeros({2}), 1.0); }, "dropout");
  expect_error([] { dropout(zeros({2}), -0.1); }, "dropout");
  expect_error([] { dropout(zeros({2}), NAN); }, "dropout");
  expect_error([] { dropout(zeros({2}, DType::i64), 0.5); }, "dropout");
}

}  // namespace
}  // namespace ember
