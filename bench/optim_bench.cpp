// Fused optimizer update throughput: one AdamW (and SGD with momentum) step
// over 10M float32 parameters, reported as GB/s of memory traffic.
//
// AdamW reads p, g, m, v and writes p, m, v: 28 bytes per float32 parameter;
// SGD with momentum reads p, g, buf and writes p, buf: 20 bytes. BM_Triad
// (a[i] = b[i] + s c[i], OpenMP, 12 bytes per element) measures in the same
// run what this machine's memory delivers to a plain streaming loop, the
// ceiling for these bandwidth-bound kernels.
//   ./build/optim_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include "ember/ember.h"
#include "ember/optim/fused_updates.h"

using namespace ember;

namespace {

constexpr int64_t kParams = 10'000'000;

void BM_AdamWStep(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor p = rand({n}), g = rand({n}) - 0.5, m = zeros({n}), v = zeros({n});
  optim::AdamWHyper h{3e-4, 0.9, 0.95, 1e-8, 0.1, 1};
  for (auto _ : state) {
    optim::adamw_update_(p, g, m, v, h);
    ++h.step;
    benchmark::DoNotOptimize(p.raw_data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(state.iterations()) * double(n) * 28.0 / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["params"] = double(n);
}
BENCHMARK(BM_AdamWStep)->Arg(kParams)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AdamWStepBF16(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor p = cast(rand({n}), DType::bf16), g = cast(rand({n}) - 0.5, DType::bf16), m = zeros({n}), v = zeros({n});
  optim::AdamWHyper h{3e-4, 0.9, 0.95, 1e-8, 0.1, 1};
  for (auto _ : state) {
    optim::adamw_update_(p, g, m, v, h);
    ++h.step;
    benchmark::DoNotOptimize(p.raw_data());
  }
  // bf16 p and g (2 + 2 + 2 bytes), float32 m and v (4 * 4 bytes).
  state.counters["GB/s"] = benchmark::Counter(double(state.iterations()) * double(n) * 22.0 / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AdamWStepBF16)->Arg(kParams)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SGDMomentumStep(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor p = rand({n}), g = rand({n}) - 0.5, buf = zeros({n});
  optim::SGDHyper h{0.01, 0.9, 0.0, 0.0, false, false};
  for (auto _ : state) {
    optim::sgd_update_(p, g, buf, h);
    benchmark::DoNotOptimize(p.raw_data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(state.iterations()) * double(n) * 20.0 / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SGDMomentumStep)->Arg(kParams)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Triad(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = zeros({n}), b = rand({n}), c = rand({n});
  float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const float* pc = c.data<float>();
  for (auto _ : state) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + 0.5f * pc[i];
    benchmark::DoNotOptimize(pa);
  }
  state.counters["GB/s"] = benchmark::Counter(double(state.iterations()) * double(n) * 12.0 / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Triad)->Arg(kParams)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
