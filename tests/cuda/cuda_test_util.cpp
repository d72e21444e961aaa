// The CPU-against-GPU comparison the CUDA tests share (see cuda_test_util.h).
#include "cuda/cuda_test_util.h"

#include <cmath>
#include <sstream>

namespace ember::testing {

void expect_close(const Tensor& got, const Tensor& want, const CudaCheck& check, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what << ": shapes differ";
  ASSERT_EQ(got.dtype(), want.dtype()) << what << ": dtypes differ";
  std::vector<double> g = to_device(got.detach(), Device::cpu()).to_vector<double>();
  std::vector<double> w = want.detach().to_vector<double>();
  int64_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < g.size(); ++i) {
    bool same_nan = std::isnan(g[i]) && std::isnan(w[i]);
    bool same_inf = std::isinf(g[i]) && g[i] == w[i];
    if (same_nan || same_inf) continue;
    if (!(std::fabs(g[i] - w[i]) <= check.atol + check.rtol * std::fabs(w[i]))) {
      if (bad == 0) first << "element " << i << ": gpu " << g[i] << ", cpu " << w[i];
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.size() << " elements differ; first " << first.str();
}

void expect_cuda_matches_cpu(const OpFn& fn, const std::vector<Tensor>& inputs, const CudaCheck& check,
                             const char* what) {
  const Device gpu = Device::cuda(0);
  auto run = [&](Device device, std::vector<Tensor>& leaves) {
    leaves.clear();
    for (const Tensor& t : inputs) {
      Tensor x = to_device(t.detach(), device).detach();
      if (check.grads && is_floating(x.dtype())) x.requires_grad_(true);
      leaves.push_back(x);
    }
    return fn(leaves);
  };
  std::vector<Tensor> cpu_leaves, gpu_leaves;
  std::vector<Tensor> cpu_out = run(Device::cpu(), cpu_leaves);
  std::vector<Tensor> gpu_out = run(gpu, gpu_leaves);
  ASSERT_EQ(cpu_out.size(), gpu_out.size());
  for (size_t k = 0; k < cpu_out.size(); ++k) {
    EXPECT_TRUE(gpu_out[k].device() == gpu) << what << ": output " << k << " is on " << gpu_out[k].device().str();
    expect_close(gpu_out[k], cpu_out[k], check, std::string(what) + " output " + std::to_string(k));
  }
  if (!check.grads) return;
  // One scalar from every differentiable output, weighted so that each element's
  // gradient differs (a plain sum would hide transposed or misplaced gradients).
  Tensor cpu_loss, gpu_loss;
  Generator gen(1234);
  for (size_t k = 0; k < cpu_out.size(); ++k) {
    if (!cpu_out[k].requires_grad()) continue;
    Tensor w = randn(cpu_out[k].shape(), cpu_out[k].dtype(), Device::cpu(), &gen);
    Tensor lc = sum(cpu_out[k] * w);
    Tensor lg = sum(gpu_out[k] * to_device(w, gpu));
    cpu_loss = cpu_loss.defined() ? cpu_loss + lc : lc;
    gpu_loss = gpu_loss.defined() ? gpu_loss + lg : lg;
  }
  if (!cpu_loss.defined()) return;
  cpu_loss.backward();
  gpu_loss.backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!cpu_leaves[i].requires_grad()) continue;
    Tensor gc = cpu_leaves[i].grad(), gg = gpu_leaves[i].grad();
    ASSERT_EQ(gc.defined(), gg.defined()) << what << ": gradient of input " << i << " exists on one device only";
    if (!gc.defined()) continue;
    expect_close(gg, gc, check, std::string(what) + " gradient of input " + std::to_string(i));
  }
}

}  // namespace ember::testing
