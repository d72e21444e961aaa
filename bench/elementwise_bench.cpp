// Memory-bound kernels against the machine's copy bandwidth: a large
// elementwise add, a unary op, a broadcast add, a full and a row reduction, and
// memcpy as the reference in the same run. Bytes counted are bytes read plus
// bytes written, so GB/s compares directly with memcpy's (which moves 2x size).
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "ember/ember.h"

using namespace ember;

namespace {

constexpr int64_t kN = int64_t(1) << 24;  // 16M floats = 64 MiB per tensor

void BM_memcpy(benchmark::State& state) {
  std::vector<float> a(size_t(kN), 1.0f);
  std::vector<float> b(a.size());
  for (auto _ : state) {
#pragma omp parallel for schedule(static)
    for (int p = 0; p < 16; ++p) std::memcpy(b.data() + p * (kN / 16), a.data() + p * (kN / 16), sizeof(float) * size_t(kN / 16));
    benchmark::DoNotOptimize(b.data());
  }
  state.SetBytesProcessed(state.iterations() * 2 * kN * int64_t(sizeof(float)));
}

void BM_add(benchmark::State& state) {
  Tensor a = ones({kN}), b = ones({kN});
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).raw_data());
  state.SetBytesProcessed(state.iterations() * 3 * kN * int64_t(sizeof(float)));
}

void BM_add_broadcast_row(benchmark::State& state) {
  Tensor a = ones({kN / 1024, 1024}), b = ones({1024});
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).raw_data());
  state.SetBytesProcessed(state.iterations() * 2 * kN * int64_t(sizeof(float)));
}

void BM_exp(benchmark::State& state) {
  Tensor a = ones({kN});
  for (auto _ : state) benchmark::DoNotOptimize(exp(a).raw_data());
  state.SetBytesProcessed(state.iterations() * 2 * kN * int64_t(sizeof(float)));
}

void BM_gelu(benchmark::State& state) {
  Tensor a = ones({kN});
  for (auto _ : state) benchmark::DoNotOptimize(gelu(a, true).raw_data());
  state.SetBytesProcessed(state.iterations() * 2 * kN * int64_t(sizeof(float)));
}

void BM_sum_all(benchmark::State& state) {
  Tensor a = ones({kN});
  for (auto _ : state) benchmark::DoNotOptimize(sum(a).raw_data());
  state.SetBytesProcessed(state.iterations() * kN * int64_t(sizeof(float)));
}

void BM_sum_rows(benchmark::State& state) {  // [16384, 1024] -> [16384]
  Tensor a = ones({kN / 1024, 1024});
  for (auto _ : state) benchmark::DoNotOptimize(sum(a, {1}).raw_data());
  state.SetBytesProcessed(state.iterations() * kN * int64_t(sizeof(float)));
}

void BM_sum_cols(benchmark::State& state) {  // [16384, 1024] -> [1024], the bias-gradient shape
  Tensor a = ones({kN / 1024, 1024});
  for (auto _ : state) benchmark::DoNotOptimize(sum(a, {0}).raw_data());
  state.SetBytesProcessed(state.iterations() * kN * int64_t(sizeof(float)));
}

void BM_transpose_copy(benchmark::State& state) {
  Tensor a = ones({4096, 4096});
  for (auto _ : state) benchmark::DoNotOptimize(contiguous(transpose(a, 0, 1)).raw_data());
  state.SetBytesProcessed(state.iterations() * 2 * 4096 * 4096 * int64_t(sizeof(float)));
}

}  // namespace

BENCHMARK(BM_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_add)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_add_broadcast_row)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_exp)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gelu)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_sum_all)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_sum_rows)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_sum_cols)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_transpose_copy)->Unit(benchmark::kMillisecond)->UseRealTime();
