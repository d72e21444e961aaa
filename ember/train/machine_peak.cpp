// GEMM ceiling and peak memory (see machine_peak.h).
#include "ember/train/machine_peak.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "ember/autograd/grad_mode.h"
#include "ember/core/allocator.h"
#include "ember/ops/ops.h"

namespace ember::train {

double measure_gemm_peak_gflops(double seconds) {
  NoGradGuard no_grad;
  constexpr int64_t n = 2048;
  Generator gen(7);
  Tensor a = randn({n, n}, DType::f32, Device::cpu(), &gen), b = randn({n, n}, DType::f32, Device::cpu(), &gen);
  (void)matmul(a, b).raw_data();  // warm-up: library initialisation, page faults
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + std::chrono::duration<double>(seconds);
  double best = 0;
  int runs = 0;
  while (runs < 3 || clock::now() < until) {
    const auto t0 = clock::now();
    Tensor c = matmul(a, b);
    (void)c.raw_data();
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, 2.0 * double(n) * n * n / s / 1e9);
    ++runs;
  }
  return best;
}

double measure_gemm_peak_gflops(Device device, double seconds) {
  if (device.is_cpu()) return measure_gemm_peak_gflops(seconds);
  NoGradGuard no_grad;
  constexpr int64_t n = 4096;
  Generator gen(7);
  Tensor a = to_device(randn({n, n}, DType::f32, Device::cpu(), &gen), device);
  Tensor b = to_device(randn({n, n}, DType::f32, Device::cpu(), &gen), device);
  auto& iface = device_interface(device);
  (void)matmul(a, b);  // warm-up: handle creation, kernel selection
  iface.synchronize();
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + std::chrono::duration<double>(seconds);
  double best = 0;
  int runs = 0;
  while (runs < 5 || clock::now() < until) {
    const auto t0 = clock::now();
    Tensor c = matmul(a, b);
    iface.synchronize();
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, 2.0 * double(n) * n * n / s / 1e9);
    ++runs;
  }
  return best;
}

double model_flops_utilisation(double flops_per_s, double& peak_gflops) {
  peak_gflops = std::max(peak_gflops, flops_per_s / 1e9);
  return peak_gflops > 0 ? flops_per_s / (peak_gflops * 1e9) : 0;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace ember::train
