// The inference path's matrix products (infer/quant_kernels.h) with float32,
// int8, int4 (groups of 64) and f16 weights: decode GEMV (n = 1 and 4 rows) on the
// GPT-2 124M layer shapes and on a matrix far larger than the L3 cache (the
// DRAM-bound case decode is in), and the prefill GEMM (n = 256).
// Counters: bytes_per_second is the weight bytes (with scales) read per second.
//   OMP_NUM_THREADS=2 build/bench/quant_kernels_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ember/infer/quant_kernels.h"

namespace {

using ember::infer::LinearWeight;
using ember::infer::QuantizedMatrix;
using ember::infer::WeightFormat;

// state.range: format (0 f32, 1 int8, 2 int4, 3 f16), rows, cols, n.
void BM_linear_rows(benchmark::State& state) {
  const auto format = WeightFormat(state.range(0));
  const int64_t m = state.range(1), k = state.range(2), n = state.range(3);
  std::vector<float> w(size_t(m * k)), x(size_t(n * k)), y(size_t(n * m)), scratch;
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 0.02f);
  for (float& v : w) v = d(rng);
  for (float& v : x) v = d(rng);
  QuantizedMatrix q;
  LinearWeight lw{WeightFormat::f32, m, k, 0, w.data(), nullptr};
  if (format != WeightFormat::f32) {
    q = ember::infer::quantize_matrix(w.data(), m, k, format, 64);
    lw = q.view();
    std::vector<float>().swap(w);  // only the quantized matrix is read
  }
  for (auto _ : state) {
    ember::infer::linear_rows(lw, x.data(), n, nullptr, y.data(), false, scratch);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * lw.bytes());
  state.counters["GFLOP/s"] =
      benchmark::Counter(double(2 * m * k * n) * double(state.iterations()), benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.SetLabel(ember::infer::weight_format_name(format));
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"fmt", "m", "k", "n"});
  for (int f = 0; f < 4; ++f) {
    for (int64_t n : {1, 4}) {
      b->Args({f, 2304, 768, n});   // GPT-2 c_attn
      b->Args({f, 3072, 768, n});   // mlp.c_fc
      b->Args({f, 768, 3072, n});   // mlp.c_proj
      b->Args({f, 50257, 768, n});  // lm_head
      b->Args({f, 65536, 1024, n}); // 256 MiB as float32: streamed from DRAM in every format
    }
    b->Args({f, 3072, 768, 256});   // prefill of 256 tokens
  }
}

BENCHMARK(BM_linear_rows)->Apply(shapes)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
