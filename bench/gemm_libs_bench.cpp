// gemm_libs_bench: which CPU GEMM library should ember's matmul call, and how close does it
// get to what this machine can do?
//
// Standalone on purpose: it does not link ember, so it can be built and rerun while the rest of
// the tree is in flux. It measures float32 row-major C[M,N] = op(A)·op(B) with inner dimension K
// for the three forms a transformer's forward and backward need:
//   NN  C = A·B     (forward: x·W, attention P·V)
//   NT  C = A·Bᵀ    (backward dX = dY·Wᵀ, attention Q·Kᵀ)
//   TN  C = Aᵀ·B    (backward dW = Xᵀ·dY)
// with
//   dnnl_sgemm            oneDNN's BLAS-like call (no primitive object)
//   dnnl_matmul           oneDNN matmul primitive created once, outside the timed loop
//   dnnl_matmul_eager     primitive descriptor + primitive created on every call, then executed
//                         (what an eager framework pays without its own per-shape cache)
//   dnnl_matmul_create    the creation alone (cache on = oneDNN's default primitive cache,
//                         cache off = dnnl_set_primitive_cache_capacity(0))
//   cblas_sgemm           OpenBLAS (run with and without OPENBLAS_CORETYPE=...)
//   dnnl_matmul_bf16      matmul primitive, bf16 A and B, f32 C (skipped with the reason when
//                         oneDNN has no bf16 implementation for this CPU)
// on the forward shapes (each in NN, NT and TN), and, as "..._bwd", on the exact backward products
// of the GPT layers (dX = dY·Wᵀ, dW = xᵀ·dY) and two decode-sized products (M = 8),
// plus the machine's limits: an FMA throughput loop (AVX-512 when compiled for it, else AVX2/FMA)
// and memcpy bandwidth over a 256 MiB buffer.
//
// Every result carries a "GFLOPS" (or "GBps") rate counter; all benchmarks use real time, because
// the work runs on several threads. Run, for example:
//   OMP_NUM_THREADS=2 ./gemm_libs_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
// Mixing libraries in one process lets one library's spinning worker threads steal cores from the
// next; use --benchmark_filter to run each library in its own process (see docs/PERFORMANCE.md).

#include <benchmark/benchmark.h>
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// Buffers

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using Buffer = std::unique_ptr<T[], FreeDeleter>;

template <class T>
Buffer<T> alloc(size_t n) {
  size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
  return Buffer<T>(static_cast<T*>(std::aligned_alloc(64, bytes)));
}

Buffer<float> random_floats(size_t n, unsigned seed) {
  auto p = alloc<float>(n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (size_t i = 0; i < n; ++i) p[i] = dist(rng);
  return p;
}

Buffer<float> zero_floats(size_t n) {
  auto p = alloc<float>(n);
  std::memset(p.get(), 0, n * sizeof(float));
  return p;
}

// float -> bfloat16 bits, round to nearest even (inputs are finite).
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// ---------------------------------------------------------------------------------------------
// Shapes. Benchmark args: {M, N, K, batch, variant}; variant 0 = NN, 1 = NT, 2 = TN.

enum Variant : int64_t { kNN = 0, kNT = 1, kTN = 2 };

struct Gemm {
  int64_t M, N, K, batch;
  Variant v;
  bool ta() const { return v == kTN; }
  bool tb() const { return v == kNT; }
  // Row-major leading dimensions of A as stored ([M,K] or [K,M]) and B ([K,N] or [N,K]).
  int64_t lda() const { return ta() ? M : K; }
  int64_t ldb() const { return tb() ? K : N; }
  int64_t ldc() const { return N; }
  size_t a_elems() const { return size_t(M) * K; }
  size_t b_elems() const { return size_t(K) * N; }
  size_t c_elems() const { return size_t(M) * N; }
  double flops() const { return 2.0 * double(M) * double(N) * double(K) * double(batch); }
};

Gemm gemm_of(const benchmark::State& s) {
  return Gemm{s.range(0), s.range(1), s.range(2), s.range(3), static_cast<Variant>(s.range(4))};
}

void set_gflops(benchmark::State& s, double flops_per_iter) {
  s.counters["GFLOPS"] =
      benchmark::Counter(flops_per_iter * 1e-9 * double(s.iterations()), benchmark::Counter::kIsRate);
}

// {M, N, K, batch}. M = B*T = 8*256 = 2048 for the GPT shapes; (K, N) per the layer:
// d=256: qkv (256,768), proj (256,256), fc (256,1024), fc-proj (1024,256), lm-head (256,8192)
// d=384: qkv (384,1152), proj (384,384), fc (384,1536), fc-proj (1536,384), lm-head (384,16384)
// attention: 8 sequences * 4 heads, [256,64]x[64,256] (scores) and [256,256]x[256,64] (P·V).
const std::vector<std::vector<int64_t>> kShapes = {
    {2048, 2048, 2048, 1},
    {2048, 768, 256, 1},   {2048, 256, 256, 1},   {2048, 1024, 256, 1},
    {2048, 256, 1024, 1},  {2048, 8192, 256, 1},
    {2048, 1152, 384, 1},  {2048, 384, 384, 1},   {2048, 1536, 384, 1},
    {2048, 384, 1536, 1},  {2048, 16384, 384, 1},
    {256, 256, 64, 32},    {256, 64, 256, 32},
};

void gemm_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "batch", "v"});
  for (const auto& s : kShapes)
    for (int64_t v : {kNN, kNT, kTN}) b->Args({s[0], s[1], s[2], s[3], v});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

// The "_bwd" benchmarks: the exact backward products of each GPT layer y[2048,N] = x[2048,K]·W[K,N]
//   dX[2048,K] = dY[2048,N]·Wᵀ  -> NT with (M, N, K) = (2048, K, N)
//   dW[K,N]    = xᵀ·dY          -> TN with (M, N, K) = (K, N, 2048)
// plus two decode-sized forward products (M = 8 rows), where per-call primitive creation is
// largest relative to the work.
void bwd_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "batch", "v"});
  for (const auto& s : kShapes) {
    if (s[3] != 1 || s[0] != 2048 || s[1] == s[0]) continue;  // GPT layers only
    const int64_t M = s[0], N = s[1], K = s[2];
    b->Args({M, K, N, 1, kNT});
    b->Args({K, N, M, 1, kTN});
  }
  b->Args({8, 1152, 384, 1, kNN});
  b->Args({8, 16384, 384, 1, kNN});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// ---------------------------------------------------------------------------------------------
// (a) dnnl_sgemm and (c) cblas_sgemm. Batched shapes loop over the batch (neither has a batched
// call in these versions); each call is threaded by the library.

void BM_dnnl_sgemm(benchmark::State& state) {
  const Gemm g = gemm_of(state);
  auto A = random_floats(g.a_elems() * g.batch, 1), B = random_floats(g.b_elems() * g.batch, 2);
  auto C = zero_floats(g.c_elems() * g.batch);
  const char ta = g.ta() ? 'T' : 'N', tb = g.tb() ? 'T' : 'N';
  for (auto _ : state) {
    for (int64_t i = 0; i < g.batch; ++i) {
      dnnl_status_t st = dnnl_sgemm(ta, tb, g.M, g.N, g.K, 1.0f, A.get() + i * g.a_elems(),
                                    g.lda(), B.get() + i * g.b_elems(), g.ldb(), 0.0f,
                                    C.get() + i * g.c_elems(), g.ldc());
      if (st != dnnl_success) {
        state.SkipWithError("dnnl_sgemm failed");
        return;
      }
    }
    benchmark::ClobberMemory();
  }
  set_gflops(state, g.flops());
}

void BM_cblas_sgemm(benchmark::State& state) {
  const Gemm g = gemm_of(state);
  auto A = random_floats(g.a_elems() * g.batch, 1), B = random_floats(g.b_elems() * g.batch, 2);
  auto C = zero_floats(g.c_elems() * g.batch);
  const CBLAS_TRANSPOSE ta = g.ta() ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = g.tb() ? CblasTrans : CblasNoTrans;
  for (auto _ : state) {
    for (int64_t i = 0; i < g.batch; ++i)
      cblas_sgemm(CblasRowMajor, ta, tb, g.M, g.N, g.K, 1.0f, A.get() + i * g.a_elems(), g.lda(),
                  B.get() + i * g.b_elems(), g.ldb(), 0.0f, C.get() + i * g.c_elems(), g.ldc());
    benchmark::ClobberMemory();
  }
  state.SetLabel(openblas_get_corename());
  set_gflops(state, g.flops());
}

// ---------------------------------------------------------------------------------------------
// (b), (d) oneDNN matmul primitive. Transposes are expressed as strides, batches as a leading
// dimension, so one primitive covers a whole batched product.

using dnnl::memory;

struct MatmulDescs {
  memory::desc a, b, c;
};

MatmulDescs matmul_descs(const Gemm& g, memory::data_type in_dt) {
  const memory::dim M = g.M, N = g.N, K = g.K, Bt = g.batch;
  memory::dims a_strides = g.ta() ? memory::dims{M * K, 1, M} : memory::dims{M * K, K, 1};
  memory::dims b_strides = g.tb() ? memory::dims{K * N, 1, K} : memory::dims{K * N, N, 1};
  return {memory::desc({Bt, M, K}, in_dt, a_strides), memory::desc({Bt, K, N}, in_dt, b_strides),
          memory::desc({Bt, M, N}, memory::data_type::f32, memory::dims{M * N, N, 1})};
}

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::matmul::primitive_desc make_matmul_pd(const MatmulDescs& d) {
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(d.a, d.b, d.c), cpu_engine());
}

void matmul_bench(benchmark::State& state, memory::data_type in_dt) {
  const Gemm g = gemm_of(state);
  const MatmulDescs d = matmul_descs(g, in_dt);
  dnnl::matmul::primitive_desc pd;
  try {
    pd = make_matmul_pd(d);
  } catch (const dnnl::error& e) {
    state.SkipWithError((std::string("matmul primitive_desc: ") + e.what()).c_str());
    for (auto _ : state) {
    }
    return;
  }
  dnnl::matmul prim(pd);
  dnnl::stream strm(cpu_engine());

  auto Af = random_floats(g.a_elems() * g.batch, 1), Bf = random_floats(g.b_elems() * g.batch, 2);
  auto C = zero_floats(g.c_elems() * g.batch);
  Buffer<uint16_t> A16, B16;
  void* a_ptr = Af.get();
  void* b_ptr = Bf.get();
  if (in_dt == memory::data_type::bf16) {
    A16 = alloc<uint16_t>(g.a_elems() * g.batch);
    B16 = alloc<uint16_t>(g.b_elems() * g.batch);
    for (size_t i = 0; i < g.a_elems() * g.batch; ++i) A16[i] = to_bf16(Af[i]);
    for (size_t i = 0; i < g.b_elems() * g.batch; ++i) B16[i] = to_bf16(Bf[i]);
    a_ptr = A16.get();
    b_ptr = B16.get();
  }
  memory am(d.a, cpu_engine(), a_ptr), bm(d.b, cpu_engine(), b_ptr), cm(d.c, cpu_engine(), C.get());
  const std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};

  for (auto _ : state) {
    prim.execute(strm, args);
    strm.wait();
  }
  state.SetLabel(pd.impl_info_str());
  set_gflops(state, g.flops());
}

void BM_dnnl_matmul(benchmark::State& state) { matmul_bench(state, memory::data_type::f32); }
void BM_dnnl_matmul_bf16(benchmark::State& state) { matmul_bench(state, memory::data_type::bf16); }

// Eager without a framework-side cache: build the primitive descriptor and primitive, then run.
void BM_dnnl_matmul_eager(benchmark::State& state) {
  const Gemm g = gemm_of(state);
  const MatmulDescs d = matmul_descs(g, memory::data_type::f32);
  auto A = random_floats(g.a_elems() * g.batch, 1), B = random_floats(g.b_elems() * g.batch, 2);
  auto C = zero_floats(g.c_elems() * g.batch);
  dnnl::stream strm(cpu_engine());
  memory am(d.a, cpu_engine(), A.get()), bm(d.b, cpu_engine(), B.get()),
      cm(d.c, cpu_engine(), C.get());
  const std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
  for (auto _ : state) {
    dnnl::matmul prim(make_matmul_pd(d));
    prim.execute(strm, args);
    strm.wait();
  }
  set_gflops(state, g.flops());
}

// Creation alone: arg 5 = 1 keeps oneDNN's primitive cache (default), 0 disables it.
void BM_dnnl_matmul_create(benchmark::State& state) {
  const Gemm g = gemm_of(state);
  const bool cache = state.range(5) != 0;
  const int saved = dnnl::get_primitive_cache_capacity();
  dnnl::set_primitive_cache_capacity(cache ? saved : 0);
  const MatmulDescs d = matmul_descs(g, memory::data_type::f32);
  for (auto _ : state) {
    dnnl::matmul prim(make_matmul_pd(d));
    benchmark::DoNotOptimize(prim.get());
  }
  dnnl::set_primitive_cache_capacity(saved);
  state.SetLabel(cache ? "primitive cache on" : "primitive cache off");
}

void create_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "batch", "v", "cache"});
  for (int64_t cache : {1, 0})
    for (const auto& s : kShapes) b->Args({s[0], s[1], s[2], s[3], kNN, cache});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// ---------------------------------------------------------------------------------------------
// Machine limits.

// FMA throughput: kAcc independent accumulator chains per thread, at least latency x pipes
// (4 cycles x 2 FMA units = 8 on current x86 cores), and few enough that the accumulators and
// the two operands stay in registers (16 ymm registers without AVX-512, 32 zmm with it).
constexpr int64_t kFmaIters = 1 << 20;

#if defined(__AVX512F__)
using vec = __m512;
constexpr int kLanes = 16;
inline vec vset(float x) { return _mm512_set1_ps(x); }
inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
inline vec vadd(vec a, vec b) { return _mm512_add_ps(a, b); }
// Stored and added lane by lane: GCC 12 warns falsely inside
// _mm512_reduce_add_ps (an intrinsic's deliberately undefined operand, bug 105593).
inline float vsum(vec a) {
  alignas(64) float lanes[kLanes];
  _mm512_store_ps(lanes, a);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}
constexpr const char* kIsa = "AVX-512 FMA";
constexpr int kAcc = 24;
#elif defined(__FMA__) && defined(__AVX__)
using vec = __m256;
constexpr int kLanes = 8;
inline vec vset(float x) { return _mm256_set1_ps(x); }
inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
inline vec vadd(vec a, vec b) { return _mm256_add_ps(a, b); }
inline float vsum(vec a) {
  alignas(32) float t[8];
  _mm256_store_ps(t, a);
  float s = 0;
  for (float x : t) s += x;
  return s;
}
constexpr const char* kIsa = "AVX2 FMA (256-bit)";
constexpr int kAcc = 12;
#else
#error "gemm_libs_bench needs FMA (build with -march=native on an x86-64 machine with FMA)"
#endif

__attribute__((noinline)) float fma_kernel(int64_t iters, float seed) {
  vec acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = vset(seed + float(j));
  const vec a = vset(0.999999f), b = vset(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kAcc; ++j) acc[j] = vfma(acc[j], a, b);
  }
  vec s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = vadd(s, acc[j]);
  return vsum(s);
}

void BM_fma_peak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  float sink = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += fma_kernel(kFmaIters, float(omp_get_thread_num()));
  }
  benchmark::DoNotOptimize(sink);
  state.SetLabel(kIsa);
  set_gflops(state, 2.0 * kLanes * kAcc * double(kFmaIters) * threads);
}

// memcpy of a 256 MiB buffer; with 2 threads each copies its own half. "GBps" counts bytes copied
// (each byte is read once and written once).
void BM_memcpy(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const size_t bytes = size_t(256) << 20;
  auto src = alloc<char>(bytes), dst = alloc<char>(bytes);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {  // first touch by the thread that copies the part
    const size_t part = bytes / threads;
    std::memset(src.get() + t * part, 1, part);
    std::memset(dst.get() + t * part, 0, part);
  }
  for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; ++t) {
      const size_t part = bytes / threads;
      std::memcpy(dst.get() + t * part, src.get() + t * part, part);
    }
    benchmark::ClobberMemory();
  }
  state.counters["GBps"] =
      benchmark::Counter(double(bytes) * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

}  // namespace

BENCHMARK(BM_fma_peak)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_memcpy)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_dnnl_sgemm)->Apply(gemm_args);
BENCHMARK(BM_dnnl_matmul)->Apply(gemm_args);
BENCHMARK(BM_dnnl_matmul_eager)->Apply(gemm_args);
BENCHMARK(BM_dnnl_matmul_create)->Apply(create_args);
BENCHMARK(BM_dnnl_matmul_bf16)->Apply(gemm_args);
BENCHMARK(BM_cblas_sgemm)->Apply(gemm_args);
BENCHMARK(BM_dnnl_sgemm)->Name("BM_dnnl_sgemm_bwd")->Apply(bwd_args);
BENCHMARK(BM_dnnl_matmul)->Name("BM_dnnl_matmul_bwd")->Apply(bwd_args);
BENCHMARK(BM_dnnl_matmul_eager)->Name("BM_dnnl_matmul_eager_bwd")->Apply(bwd_args);
BENCHMARK(BM_cblas_sgemm)->Name("BM_cblas_sgemm_bwd")->Apply(bwd_args);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) +
                                            "." + std::to_string(v->patch));
  benchmark::AddCustomContext("onednn_isa", isa_name(dnnl_get_effective_cpu_isa()));
  benchmark::AddCustomContext("omp_max_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("openblas_threads", std::to_string(openblas_get_num_threads()));
  benchmark::AddCustomContext("fma_isa", kIsa);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
