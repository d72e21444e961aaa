// GEMM ceiling, memory bandwidth and peak memory (see machine_peak.h).
#include "ember/train/machine_peak.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>

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

namespace {

// The sum of p[lo, hi): 32 independent partial sums (four vector registers of
// adds in flight) and a software prefetch 4 KiB ahead, as the decode kernels
// stream their weights; with the hardware prefetcher alone a core reads less.
float sum_range(const float* p, int64_t lo, int64_t hi) {
  constexpr int64_t kLanes = 32;
  float part[kLanes] = {};
  int64_t i = lo;
  for (; i + kLanes <= hi; i += kLanes) {
    __builtin_prefetch(p + i + 1024, 0, 2);
    __builtin_prefetch(p + i + 1024 + 16, 0, 2);
    for (int64_t j = 0; j < kLanes; ++j) part[j] += p[i + j];
  }
  float s = 0;
  for (; i < hi; ++i) s += p[i];
  for (float v : part) s += v;
  return s;
}

}  // namespace

MemoryBandwidth measure_memory_bandwidth(double seconds) {
  constexpr int64_t n = int64_t(64) << 20;  // floats: 256 MiB
  const std::unique_ptr<float[]> a(new (std::nothrow) float[size_t(n)]), b(new (std::nothrow) float[size_t(n)]);
  if (!a || !b) return {};  // no 512 MiB to spare: unknown (zeros), not a failed benchmark
  // First touch from the threads that read later (their pages, their nodes).
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[size_t(i)] = 1.0f, b[size_t(i)] = 0.0f;
  using clock = std::chrono::steady_clock;
  auto best_of = [&](auto&& pass, double bytes) {
    const auto until = clock::now() + std::chrono::duration<double>(seconds / 2);
    double best = 0;
    for (int runs = 0; runs < 3 || clock::now() < until; ++runs) {
      const auto t0 = clock::now();
      pass();
      best = std::max(best, bytes / std::chrono::duration<double>(clock::now() - t0).count() / 1e9);
    }
    return best;
  };
  volatile float sink = 0;
  MemoryBandwidth bw;
  bw.read_gbps = best_of(
      [&] {
        float total = 0;
#pragma omp parallel reduction(+ : total)
        {
          const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
          total += sum_range(a.get(), n * t / nt, n * (t + 1) / nt);
        }
        sink = sink + total;
      },
      double(n) * sizeof(float));
  bw.copy_gbps = best_of(
      [&] {
#pragma omp parallel
        {
          const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
          const int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
          std::memcpy(b.get() + lo, a.get() + lo, size_t(hi - lo) * sizeof(float));
        }
      },
      2.0 * double(n) * sizeof(float));
  return bw;
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
