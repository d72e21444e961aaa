// CUDA optimizer primitives against the CPU: AdamW and SGD steps on
// parameters living on the GPU (the fused in-place updates, state on the
// GPU) follow the CPU's trajectory over several steps; grad_norm and
// clip_grad_norm_ agree for every norm type, with many tensors, 16-bit
// gradients, NaN and empty gradients.
#include <cmath>

#include "cuda/cuda_test_util.h"
#include "ember/optim/optim.h"
#include "test_util.h"

namespace ember {
namespace {

using testing::CudaCheck;
using testing::expect_close;

const Device kGpu = Device::cuda(0);

// The same parameters on both devices.
struct Twin {
  std::vector<Tensor> cpu, gpu;
};

Twin make_params(DType dtype, const std::vector<Shape>& shapes, uint64_t seed) {
  Generator gen(seed);
  Twin t;
  for (const Shape& s : shapes) {
    Tensor p = cast(randn(s, DType::f32, Device::cpu(), &gen), dtype).detach();
    Tensor g = to_device(p, kGpu).detach();
    p.requires_grad_();
    g.requires_grad_();
    t.cpu.push_back(p);
    t.gpu.push_back(g);
  }
  return t;
}

// Gives both copies the same gradient (a function of the parameter and the step).
void set_grads(Twin& t, int step, uint64_t seed) {
  Generator gen(seed + uint64_t(step));
  for (size_t i = 0; i < t.cpu.size(); ++i) {
    const Tensor& p = t.cpu[i];
    Tensor noise = cast(randn(p.shape(), DType::f32, Device::cpu(), &gen), p.dtype());
    Tensor g = (p.detach() * 0.5 + noise).detach();
    t.cpu[i].set_grad(g);
    t.gpu[i].set_grad(to_device(g, kGpu).detach());
  }
}

void expect_same_params(const Twin& t, const CudaCheck& check, const std::string& what) {
  for (size_t i = 0; i < t.cpu.size(); ++i) {
    EXPECT_EQ(t.gpu[i].device(), kGpu);
    expect_close(t.gpu[i], t.cpu[i].detach(), check, what + " param " + std::to_string(i));
  }
}

const std::vector<Shape> kShapes = {{7, 33}, {1000}, {3, 5, 129}, {1}};

TEST(CudaOptim, AdamWStepsMatchCpu) {
  EMBER_REQUIRE_GPU();
  struct Case {
    DType dtype;
    double rtol, atol;
  };
  for (const Case& c : std::vector<Case>{{DType::f32, 1e-5, 1e-6}, {DType::f64, 1e-12, 1e-12}, {DType::bf16, 1e-2, 1e-2}}) {
    Twin t = make_params(c.dtype, kShapes, 31);
    optim::AdamWOptions o;
    o.lr = 0.01;
    o.beta2 = 0.95;
    o.weight_decay = 0.1;
    optim::AdamW cpu_opt(t.cpu, o), gpu_opt(t.gpu, o);
    for (int step = 0; step < 5; ++step) {
      set_grads(t, step, 100);
      cpu_opt.step();
      gpu_opt.step();
    }
    expect_same_params(t, {c.rtol, c.atol}, "adamw " + dtype_name(c.dtype));
  }
}

TEST(CudaOptim, SgdStepsMatchCpu) {
  EMBER_REQUIRE_GPU();
  struct Case {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  for (const Case& c : std::vector<Case>{{0.0, 0.0, 0.0, false}, {0.0, 0.0, 0.01, false}, {0.9, 0.0, 0.0, false},
                                         {0.9, 0.1, 0.01, false}, {0.9, 0.0, 0.01, true}})
    for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
      Twin t = make_params(dtype, kShapes, 32);
      optim::SGDOptions o;
      o.lr = 0.05;
      o.momentum = c.momentum;
      o.dampening = c.dampening;
      o.weight_decay = c.weight_decay;
      o.nesterov = c.nesterov;
      optim::SGD cpu_opt(t.cpu, o), gpu_opt(t.gpu, o);
      for (int step = 0; step < 4; ++step) {
        set_grads(t, step, 200);
        cpu_opt.step();
        gpu_opt.step();
      }
      double tol = dtype == DType::bf16 ? 1e-2 : dtype == DType::f64 ? 1e-12 : 1e-6;
      expect_same_params(t, {tol, tol},
                         "sgd momentum " + std::to_string(c.momentum) + (c.nesterov ? " nesterov " : " ") +
                             dtype_name(dtype));
    }
}

TEST(CudaOptim, GradNormMatchesCpuForEveryNormType) {
  EMBER_REQUIRE_GPU();
  // One large tensor (many blocks of partial sums), small ones, a 16-bit one, an empty one.
  Twin t = make_params(DType::f32, {{3000001}, {7, 33}, {5}, {0}}, 33);
  Twin h = make_params(DType::bf16, {{257, 3}}, 34);
  t.cpu.push_back(h.cpu[0]);
  t.gpu.push_back(h.gpu[0]);
  set_grads(t, 0, 300);
  for (double p : {2.0, 1.0, 3.0, double(INFINITY)}) {
    double want = optim::grad_norm(t.cpu, p), got = optim::grad_norm(t.gpu, p);
    EXPECT_NEAR(got, want, 1e-10 * want) << "norm type " << p;
  }
  // A NaN gradient never looks finite.
  std::vector<double> g(5, 1.0);
  g[3] = std::nan("");
  t.cpu[2].set_grad(tensor(g, {5}));
  t.gpu[2].set_grad(tensor(g, {5}, DType::f32, kGpu));
  for (double p : {2.0, double(INFINITY)}) {
    EXPECT_TRUE(std::isnan(optim::grad_norm(t.gpu, p))) << "norm type " << p;
    EXPECT_TRUE(std::isnan(optim::grad_norm(t.cpu, p))) << "norm type " << p;
  }
}

TEST(CudaOptim, ClipGradNormScalesLikeCpu) {
  EMBER_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    Twin t = make_params(dtype, kShapes, 35);
    set_grads(t, 0, 400);
    double want = optim::clip_grad_norm_(t.cpu, 0.5), got = optim::clip_grad_norm_(t.gpu, 0.5);
    EXPECT_NEAR(got, want, 1e-9 * want);
    const double tol = dtype == DType::bf16 ? 1e-2 : 1e-6;
    for (size_t i = 0; i < t.cpu.size(); ++i)
      expect_close(t.gpu[i].grad(), t.cpu[i].grad(), {tol, tol}, "clipped grad " + std::to_string(i));
    // The traceable form computes the norm as a GPU tensor.
    Tensor total = optim::clip_grad_norm_traceable_(t.gpu, 0.25);
    double want2 = optim::clip_grad_norm_(t.cpu, 0.25);
    EXPECT_NEAR(total.item<double>(), want2, 1e-6 * want2);
  }
}

}  // namespace
}  // namespace ember
