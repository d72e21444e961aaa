// Micro-benchmarks of the fused nn ops (attention, layer norm, softmax,
// cross-entropy), forward plus backward as training runs them, on the shapes
// that bench/torch_nn_ops.py times in PyTorch. Run with OMP_NUM_THREADS=2 and
//   --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// for medians. Counters: GFLOP/s of the matrix products (attention, causal
// blocks counted at half) and GB/s of the minimum memory traffic (the rest).
#include <benchmark/benchmark.h>

#include "ember/ember.h"

namespace {

using namespace ember;

Tensor rnd(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, DType::f32, Device::cpu(), &gen);
}

// args: B, H, T, D, causal, backward
void BM_Attention(benchmark::State& state) {
  const int64_t B = state.range(0), H = state.range(1), T = state.range(2), D = state.range(3);
  const bool causal = state.range(4) != 0, backward = state.range(5) != 0;
  Tensor q = rnd({B, H, T, D}, 1).requires_grad_(), k = rnd({B, H, T, D}, 2).requires_grad_(),
         v = rnd({B, H, T, D}, 3).requires_grad_(), g = rnd({B, H, T, D}, 4);
  for (auto _ : state) {
    if (backward) {
      Tensor o = scaled_dot_product_attention(q, k, v, causal);
      std::vector<Tensor> grads = grad({o}, {q, k, v}, {g});
      benchmark::DoNotOptimize(grads[0].raw_data());
    } else {
      NoGradGuard no_grad;
      Tensor o = scaled_dot_product_attention(q, k, v, causal);
      benchmark::DoNotOptimize(o.raw_data());
    }
  }
  // Forward: QK^T and PV, 2 flops per multiply-add each; backward: five such products.
  double products = backward ? 7.0 : 2.0;
  double flops = products * 2.0 * double(B * H * T * T * D) * (causal ? 0.5 : 1.0);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Attention)
    ->ArgNames({"B", "H", "T", "D", "causal", "bwd"})
    ->Args({8, 4, 256, 64, 1, 0})
    ->Args({8, 4, 256, 64, 1, 1})
    ->Args({8, 6, 256, 64, 1, 0})
    ->Args({8, 6, 256, 64, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// args: rows, C. Forward with weight and bias, then dx, dweight, dbias.
void BM_LayerNorm(benchmark::State& state) {
  const int64_t N = state.range(0), C = state.range(1);
  Tensor x = rnd({N, C}, 5).requires_grad_(), w = rnd({C}, 6).requires_grad_(), b = rnd({C}, 7).requires_grad_();
  Tensor g = rnd({N, C}, 8);
  for (auto _ : state) {
    Tensor y = layer_norm(x, w, b);
    std::vector<Tensor> grads = grad({y}, {x, w, b}, {g});
    benchmark::DoNotOptimize(grads[0].raw_data());
  }
  // Forward reads x and writes y; backward reads x and g and writes dx.
  double bytes = 5.0 * double(N * C) * 4.0;
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LayerNorm)->ArgNames({"N", "C"})->Args({2048, 256})->Args({2048, 384})->Unit(benchmark::kMicrosecond)->UseRealTime();

// args: rows, C, backward
void BM_Softmax(benchmark::State& state) {
  const int64_t N = state.range(0), C = state.range(1);
  const bool backward = state.range(2) != 0;
  Tensor x = rnd({N, C}, 9).requires_grad_(), g = rnd({N, C}, 10);
  for (auto _ : state) {
    if (backward) {
      Tensor y = softmax(x, -1);
      std::vector<Tensor> grads = grad({y}, {x}, {g});
      benchmark::DoNotOptimize(grads[0].raw_data());
    } else {
      NoGradGuard no_grad;
      Tensor y = softmax(x, -1);
      benchmark::DoNotOptimize(y.raw_data());
    }
  }
  double bytes = (backward ? 5.0 : 2.0) * double(N * C) * 4.0;
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Softmax)->ArgNames({"N", "C", "bwd"})->Args({2048, 8192, 0})->Args({2048, 8192, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

// args: rows, classes. Mean loss, then dlogits.
void BM_CrossEntropy(benchmark::State& state) {
  const int64_t N = state.range(0), C = state.range(1);
  Tensor z = rnd({N, C}, 11).requires_grad_();
  Tensor t = randint(0, C, {N});
  for (auto _ : state) {
    Tensor loss = cross_entropy(z, t);
    std::vector<Tensor> grads = grad({loss}, {z});
    benchmark::DoNotOptimize(grads[0].raw_data());
  }
  // Forward reads the logits; backward reads them and writes dlogits.
  double bytes = 3.0 * double(N * C) * 4.0;
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CrossEntropy)->ArgNames({"N", "C"})->Args({2048, 8192})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
