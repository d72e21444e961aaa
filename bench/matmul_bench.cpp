// matmul_bench: the cost of ember's matmul path over the GEMM library it calls.
//
// For 2048³ and the GPT preset shapes (M = 2048 rows = 8 sequences x 256 tokens;
// (K, N) per layer) it times
//   ember_matmul   ember::matmul(a [M,K], b [K,N])        (NN; allocates its output)
//   ember_linear   ember::linear(x [M,K], w [N,K])        (NT: the weight read transposed)
//   dnnl_sgemm_nn / dnnl_sgemm_nt   oneDNN's sgemm called directly on preallocated buffers
// and, for the attention products (8 x 4 heads, [256,64]x[64,256] and [256,256]x[256,64]),
// the two ways a batch can use the threads (cpu::BatchThreads), which sets
// kBatchParallelFlops, and bf16 through oneDNN's native matmul against the convert-to-float
// path. Every result has a GFLOPS rate counter; the ratio
// ember / dnnl is the overhead. Run:
//   OMP_NUM_THREADS=2 ./matmul_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <oneapi/dnnl/dnnl.h>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/matmul_kernels.h"
#include "ember/ember.h"

namespace {

using ember::Tensor;

// {M, K, N}: 2048³, then d=256 (qkv, proj, fc, fc-proj, lm-head) and d=384 likewise.
const std::vector<std::vector<int64_t>> kShapes = {
    {2048, 2048, 2048}, {2048, 256, 768},  {2048, 256, 256},  {2048, 256, 1024},
    {2048, 1024, 256},  {2048, 256, 8192}, {2048, 384, 1152}, {2048, 384, 384},
    {2048, 384, 1536},  {2048, 1536, 384}, {2048, 384, 16384},
};

void set_gflops(benchmark::State& s, double flops_per_iter) {
  s.counters["GFLOPS"] = benchmark::Counter(flops_per_iter * 1e-9 * double(s.iterations()), benchmark::Counter::kIsRate);
}

Tensor random_tensor(const ember::Shape& shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(size_t(ember::numel(shape)));
  for (double& x : v) x = u(rng);
  return ember::tensor(v, shape, ember::DType::f32);
}

void BM_ember_matmul(benchmark::State& state) {
  int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  Tensor a = random_tensor({M, K}, 1), b = random_tensor({K, N}, 2);
  for (auto _ : state) {
    Tensor c = ember::matmul(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_gflops(state, 2.0 * double(M) * double(N) * double(K));
}

void BM_ember_linear(benchmark::State& state) {
  int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  Tensor x = random_tensor({M, K}, 1), w = random_tensor({N, K}, 2);
  for (auto _ : state) {
    Tensor c = ember::linear(x, w);
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_gflops(state, 2.0 * double(M) * double(N) * double(K));
}

void run_sgemm(benchmark::State& state, bool trans_b) {
  int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  Tensor a = random_tensor({M, K}, 1), b = random_tensor(trans_b ? ember::Shape{N, K} : ember::Shape{K, N}, 2);
  Tensor c = Tensor::empty({M, N});
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* pc = c.data<float>();
  for (auto _ : state) {
    if (dnnl_sgemm('N', trans_b ? 'T' : 'N', M, N, K, 1.0f, pa, K, pb, trans_b ? K : N, 0.0f, pc, N) != dnnl_success) {
      state.SkipWithError("dnnl_sgemm failed");
      return;
    }
    benchmark::ClobberMemory();
  }
  set_gflops(state, 2.0 * double(M) * double(N) * double(K));
}
void BM_dnnl_sgemm_nn(benchmark::State& state) { run_sgemm(state, false); }
void BM_dnnl_sgemm_nt(benchmark::State& state) { run_sgemm(state, true); }

// Attention-shaped batches: {batch, M, K, N, policy}; policy 1 = over_batch, 2 = inside_gemm.
void BM_batched_policy(benchmark::State& state) {
  int64_t B = state.range(0), M = state.range(1), K = state.range(2), N = state.range(3);
  auto policy = static_cast<ember::cpu::BatchThreads>(state.range(4));
  Tensor a = random_tensor({B, M, K}, 1), b = random_tensor({B, K, N}, 2);
  Tensor c = Tensor::empty({B, M, N});
  for (auto _ : state) {
    ember::cpu::matmul(a, b, c, Tensor(), policy);
    benchmark::ClobberMemory();
  }
  set_gflops(state, 2.0 * double(B) * double(M) * double(N) * double(K));
}

void batched_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "M", "K", "N", "policy"});
  for (std::vector<int64_t> s : {std::vector<int64_t>{32, 256, 64, 256}, {32, 256, 256, 64}, {32, 64, 64, 64},
                                 {32, 128, 64, 128}, {8, 512, 128, 512}})
    for (int64_t p : {1, 2}) b->Args({s[0], s[1], s[2], s[3], p});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

// bf16 products: oneDNN's native bf16 matmul (onednn = 1; AMX or AVX-512 BF16 CPUs only) or
// convert to float32, sgemm, round once (onednn = 0).
void BM_ember_matmul_bf16(benchmark::State& state) {
  int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  bool onednn = state.range(3) != 0;
  if (onednn && std::string(ember::cpu::lowp_gemm_impl(ember::DType::bf16, M, N, K)).empty()) {
    state.SkipWithError("oneDNN has no native bf16 matmul on this CPU");
    return;
  }
  Tensor a = ember::cast(random_tensor({M, K}, 1), ember::DType::bf16);
  Tensor b = ember::cast(random_tensor({K, N}, 2), ember::DType::bf16);
  ember::cpu::set_lowp_gemm_enabled(onednn);
  for (auto _ : state) {
    Tensor c = ember::matmul(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
  ember::cpu::set_lowp_gemm_enabled(true);
  if (onednn) state.SetLabel(ember::cpu::lowp_gemm_impl(ember::DType::bf16, M, N, K));
  set_gflops(state, 2.0 * double(M) * double(N) * double(K));
}

}  // namespace

// Registered shape by shape, so that each ember result and its dnnl_sgemm peer run
// back to back (the machine is shared; drift between distant runs would bias the ratio).
int main(int argc, char** argv) {
  for (const auto& s : kShapes)
    for (auto [name, fn] : {std::pair{"ember_matmul", &BM_ember_matmul}, std::pair{"dnnl_sgemm_nn", &BM_dnnl_sgemm_nn},
                            std::pair{"ember_linear", &BM_ember_linear}, std::pair{"dnnl_sgemm_nt", &BM_dnnl_sgemm_nt}})
      benchmark::RegisterBenchmark(name, fn)->ArgNames({"M", "K", "N"})->Args(s)->UseRealTime()->Unit(
          benchmark::kMillisecond);
  // A tiny product, where ember's fixed cost per call (checks, shape inference, output
  // allocation from the cache, the GEMM plan) shows: time(ember) - time(dnnl) is that cost.
  for (auto [name, fn] : {std::pair{"ember_matmul", &BM_ember_matmul}, std::pair{"dnnl_sgemm_nn", &BM_dnnl_sgemm_nn}})
    benchmark::RegisterBenchmark(name, fn)->ArgNames({"M", "K", "N"})->Args({32, 32, 32})->UseRealTime()->Unit(
        benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("batched_policy", BM_batched_policy)->Apply(batched_args);
  for (std::vector<int64_t> s : {std::vector<int64_t>{2048, 2048, 2048}, {2048, 256, 768}, {2048, 384, 1536}})
    for (int64_t path : {0, 1})
      benchmark::RegisterBenchmark("ember_matmul_bf16", BM_ember_matmul_bf16)
          ->ArgNames({"M", "K", "N", "onednn"})
          ->Args({s[0], s[1], s[2], path})
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
