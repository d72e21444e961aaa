// SGD: 5-step trajectories (plain with weight decay, momentum with dampening,
// Nesterov) against PyTorch constants (torch.optim.SGD 2.x, CPU, gradients of
// optim_test_util.h) and against the update written out in float64.
#include <gtest/gtest.h>

#include "ember/optim/optim.h"
#include "optim/optim_test_util.h"

using namespace ember;
using namespace ember::optim;
using namespace ember::optim_test;

namespace {

// torch.optim.SGD's update rule, in float64.
std::vector<double> sgd_reference(std::vector<double> p, int steps, const SGDOptions& o) {
  std::vector<double> buf(p.size(), 0.0);
  for (int t = 0; t < steps; ++t) {
    std::vector<double> g = grad_values(p, t);
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + o.weight_decay * p[i];
      if (o.momentum != 0.0) {
        buf[i] = t == 0 ? d : o.momentum * buf[i] + (1.0 - o.dampening) * d;
        d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
      }
      p[i] -= o.lr * d;
    }
  }
  return p;
}

std::vector<double> run_sgd(DType dtype, const SGDOptions& o, int steps = 5) {
  Tensor p = make_param(dtype);
  SGD opt({p}, o);
  for (int t = 0; t < steps; ++t) {
    set_test_grad(p, t);
    opt.step();
  }
  return p.to_vector<double>();
}

const SGDOptions kPlain{0.1, 0.0, 0.0, false, 0.01};
const SGDOptions kMomentum{0.1, 0.9, 0.1, false, 0.01};
const SGDOptions kNesterov{0.1, 0.9, 0.0, true, 0.01};

}  // namespace

TEST(OptimSGD, MatchesPyTorchFloat32) {
  // torch.optim.SGD([p], lr=0.1, weight_decay=0.01)
  expect_near_all(run_sgd(DType::f32, kPlain),
                  {0.405710489, -0.842185259, 1.39723623, -0.000206694749, -0.46742627, 0.867316425}, 1e-6);
  // torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
  expect_near_all(run_sgd(DType::f32, kMomentum),
                  {0.172298297, -0.344616562, 0.635756433, 0.0557391681, -0.125798017, -0.0851327032}, 1e-6);
  // torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
  expect_near_all(run_sgd(DType::f32, kNesterov),
                  {0.156638131, -0.136881441, 0.316659153, -0.0116209388, -0.0660693347, -0.243379042}, 1e-6);
}

TEST(OptimSGD, MatchesFloat64Formula) {
  for (const SGDOptions& o : {kPlain, kMomentum, kNesterov}) {
    std::vector<double> want = sgd_reference(kP0, 5, o);
    expect_near_all(run_sgd(DType::f64, o), want, 1e-14);
    expect_near_all(run_sgd(DType::f32, o), want, 2e-6);
  }
}

TEST(OptimSGD, MomentumBufferStartsAsFirstGradient) {
  Tensor p = make_param(DType::f64);
  SGD opt({p}, {0.1, 0.9, 0.5, false, 0.0});
  set_test_grad(p, 0);
  opt.step();
  // Dampening does not apply on the first step (PyTorch clones the gradient).
  expect_near_all(opt.state(0).tensors.at("momentum_buffer").to_vector<double>(), grad_values(kP0, 0), 0.0);
}

TEST(OptimSGD, WithoutMomentumKeepsNoBuffer) {
  Tensor p = make_param();
  SGD opt({p}, kPlain);
  set_test_grad(p, 0);
  opt.step();
  EXPECT_TRUE(opt.state(0).tensors.empty());
  EXPECT_EQ(opt.state(0).step, 1);
}

TEST(OptimSGD, HalfPrecisionParameters) {
  std::vector<double> want = sgd_reference(kP0, 5, kMomentum);
  for (DType dt : {DType::bf16, DType::f16}) {
    std::vector<double> got = run_sgd(dt, kMomentum);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.02) << dtype_name(dt) << " " << i;
  }
}

TEST(OptimSGD, RejectsBadOptions) {
  Tensor p = make_param();
  EXPECT_THROW(SGD({p}, {-0.1}), Error);
  EXPECT_THROW(SGD({p}, {0.1, -0.9}), Error);
  EXPECT_THROW(SGD({p}, {0.1, 0.0, 0.0, false, -1.0}), Error);
  try {
    SGD({p}, {0.1, 0.0, 0.0, true});
    ADD_FAILURE() << "nesterov without momentum accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[SGD] Nesterov momentum requires a momentum and zero dampening"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(SGD({p}, {0.1, 0.9, 0.1, true}), Error);
  try {
    sgd_update_(p, zeros({2, 3}), Tensor(), SGDHyper{0.1, 0.9});
    ADD_FAILURE() << "momentum without buffer accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[sgd_update] momentum 0.9 needs a momentum buffer"), std::string::npos)
        << e.what();
  }
  try {
    sgd_update_(p, zeros({2, 3}, DType::f64), Tensor(), SGDHyper{0.1});
    ADD_FAILURE() << "dtype mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[sgd_update] gradient dtype float64 differs from parameter dtype float32"),
              std::string::npos)
        << e.what();
  }
}
