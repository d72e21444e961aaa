// Micro-benchmarks of the CPU attention kernels below the op layer:
//  - BM_BlockProduct: one 64 x 64 x 64 block product on one thread, the
//    register-tiled block_gemm against oneDNN's sgemm (cpu::gemm), for the
//    operand layouts the kernels use (A read as is, or transposed);
//  - BM_AttentionKernel: cpu::attention_forward / attention_backward on the
//    layouts training and prefill hand them ([B, T, H, D] rows read in place).
// Run with OMP_NUM_THREADS=2 and
//   --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// GFLOP/s counts the products a causal kernel must do (half the square).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <vector>

#include "ember/backend/cpu/attention_block_gemm.h"
#include "ember/backend/cpu/attention_kernels.h"
#include "ember/backend/cpu/gemm.h"
#include "ember/ember.h"

namespace {

using namespace ember;

std::vector<float> random_floats(size_t n, uint64_t seed) {
  Generator gen(seed);
  return randn({int64_t(n)}, DType::f32, Device::cpu(), &gen).to_vector<float>();
}

// args: m, n, k, A transposed, implementation (0 block_gemm, 1 oneDNN sgemm)
void BM_BlockProduct(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const bool ta = state.range(3) != 0, onednn = state.range(4) != 0;
  std::vector<float> a = random_floats(size_t(m * k), 1), b = random_floats(size_t(k * n), 2), c(size_t(m * n));
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);  // the kernels call block products from inside their own parallel tasks
  for (auto _ : state) {
    if (onednn) cpu::gemm(ta, false, m, n, k, 1.0f, a.data(), ta ? m : k, b.data(), n, 1.0f, c.data(), n);
    else cpu::block_gemm(m, n, k, a.data(), ta ? 1 : k, ta ? m : 1, b.data(), n, c.data(), n, true);
    benchmark::DoNotOptimize(c.data());
  }
  omp_set_num_threads(threads);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(m * n * k) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BlockProduct)
    ->ArgNames({"m", "n", "k", "ta", "onednn"})
    ->Args({64, 64, 64, 0, 0})
    ->Args({64, 64, 64, 0, 1})
    ->Args({64, 64, 64, 1, 0})
    ->Args({64, 64, 64, 1, 1})
    ->Unit(benchmark::kMicrosecond);

// args: B, H, T, D, backward. Causal self-attention (S = T); q, k, v and dO are
// [B, T, H, D] rows viewed as [B, H, T, D], as the training layer and the
// inference runner hold them.
void BM_AttentionKernel(benchmark::State& state) {
  const int64_t B = state.range(0), H = state.range(1), T = state.range(2), D = state.range(3);
  const bool backward = state.range(4) != 0;
  const size_t n = size_t(B * T * H * D);
  std::vector<float> q = random_floats(n, 1), k = random_floats(n, 2), v = random_floats(n, 3), g = random_floats(n, 4);
  std::vector<float> o(n), lse(size_t(B * H * T)), dq(n), dk(n), dv(n);
  cpu::AttentionDims d;
  d.B = B, d.H = H, d.Hkv = H, d.T = T, d.S = T, d.D = D, d.causal = true, d.scale = 0.125;
  auto in = [&](const std::vector<float>& x) { return cpu::HeadRows<const float>{x.data(), T * H * D, D, H * D}; };
  auto out = [&](std::vector<float>& x) { return cpu::HeadRows<float>{x.data(), T * H * D, D, H * D}; };
  cpu::attention_forward(d, in(q), in(k), in(v), out(o), lse.data());
  for (auto _ : state) {
    if (backward)
      cpu::attention_backward(d, in(q), in(k), in(v), in(o), lse.data(), in(g), out(dq), out(dk), out(dv));
    else
      cpu::attention_forward(d, in(q), in(k), in(v), out(o), lse.data());
    benchmark::DoNotOptimize(o.data());
    benchmark::DoNotOptimize(dq.data());
  }
  // Forward: S = Q Kᵀ and O = P V; backward: five such products (S again, dP, dV, dQ, dK).
  const double flops = (backward ? 5.0 : 2.0) * 2.0 * double(B * H * T * T * D) * 0.5;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionKernel)
    ->ArgNames({"B", "H", "T", "D", "bwd"})
    ->Args({8, 6, 256, 64, 0})   // `small` training step, per layer
    ->Args({8, 6, 256, 64, 1})
    ->Args({1, 6, 256, 64, 0})   // `small` 256-token prefill, per layer
    ->Args({1, 12, 256, 64, 0})  // `gpt2` prefill
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
