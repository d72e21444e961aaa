// GEMM bindings: float32 through ember's packed AVX2 GEMM where it is the
// faster one (AVX2 CPUs without AVX-512, products of at least 64 x 64),
// oneDNN's matmul primitive on AVX-512 CPUs for the layouts sgemm is slow at
// (its brgemm kernels keep their speed where sgemm's drop by up to a third;
// the bias is added as C is written), and oneDNN's sgemm otherwise (thin
// decode products, products inside a parallel region);
// CBLAS for float64; oneDNN's matmul primitive for bf16/f16 where the CPU has
// native 16-bit dot products.
#include "ember/backend/cpu/gemm.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <unordered_map>

#include "ember/backend/cpu/sgemm_packed.h"
#include "ember/core/error.h"

namespace ember::cpu {

namespace {

// EMBER_GEMM=sgemm (or onednn) keeps every float32 product on oneDNN's sgemm,
// EMBER_GEMM=matmul sends every one outside a parallel region (with k > 0) to
// oneDNN's matmul primitive, EMBER_GEMM=ember every one to the packed GEMM (to compare
// them in one build); anything else, or unset, lets the shape decide.
SgemmImpl initial_impl() {
  const char* env = std::getenv("EMBER_GEMM");
  const std::string v = env ? env : "";
  if (v == "onednn" || v == "sgemm") return SgemmImpl::onednn;
  if (v == "matmul") return SgemmImpl::onednn_matmul;
  if (v == "ember") return SgemmImpl::ember;
  return SgemmImpl::automatic;
}

std::atomic<SgemmImpl> g_sgemm_impl{initial_impl()};

// Threads for one packed product: all of them, except inside a parallel region
// (a batch of products split over the threads), where each product stays on
// its thread, as oneDNN's sgemm does.
int packed_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

// ---- oneDNN matmul primitives, cached per call signature ----

std::atomic<bool> g_lowp_enabled{true};

// Everything a primitive is specialised on. alpha and beta are kept as bit
// patterns: the usual 1 and 0 hit the cache, and an unusual value is a new
// entry rather than a wrong result.
struct PrimKey {
  int64_t m, n, k, lda, ldb, ldc;
  uint32_t alpha_bits, beta_bits;
  uint8_t dtype, trans_a, trans_b, bias;
  bool operator==(const PrimKey& o) const { return std::memcmp(this, &o, sizeof(PrimKey)) == 0; }
};
struct PrimKeyHash {
  size_t operator()(const PrimKey& key) const {
    const int64_t v[8] = {key.m, key.n, key.k, key.lda, key.ldb, key.ldc,
                          int64_t(key.alpha_bits) | int64_t(key.beta_bits) << 32,
                          int64_t(key.dtype) | int64_t(key.trans_a) << 8 | int64_t(key.trans_b) << 16 |
                              int64_t(key.bias) << 24};
    size_t h = 1469598103934665603ull;
    for (int64_t x : v) h = (h ^ size_t(x)) * 1099511628211ull;
    return h;
  }
};

struct PrimEntry {
  std::optional<dnnl::matmul> prim;  // empty: oneDNN has no fast kernel, use the caller's fallback
  dnnl::matmul::primitive_desc pd;
  std::string impl;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof(b));
  return b;
}

// Creates the primitive for one signature; declines reference kernels, which
// are orders of magnitude slower than the fallbacks (sgemm, or converting
// 16-bit operands to float32).
PrimEntry make_entry(const PrimKey& key) {
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  dt type = key.dtype == uint8_t(DType::bf16) ? dt::bf16 : key.dtype == uint8_t(DType::f16) ? dt::f16 : dt::f32;
  PrimEntry entry;
  try {
    dnnl::memory::desc a({key.m, key.k}, type, key.trans_a ? dims{1, key.lda} : dims{key.lda, 1});
    dnnl::memory::desc b({key.k, key.n}, type, key.trans_b ? dims{1, key.ldb} : dims{key.ldb, 1});
    dnnl::memory::desc c({key.m, key.n}, type, dims{key.ldc, 1});
    std::optional<dnnl::matmul::desc> desc;
    if (key.bias) desc.emplace(a, b, dnnl::memory::desc({1, key.n}, dt::f32, dims{key.n, 1}), c);
    else desc.emplace(a, b, c);
    dnnl::primitive_attr attr;
    // The caller's scratchpad (run_primitive), not the library's: oneDNN 2.x
    // (built without DNNL_ENABLE_CONCURRENT_EXEC) keeps its scratchpad per
    // thread, set up when a primitive is created, so a cached primitive run on
    // another thread (a serving worker) would find none or too small a one.
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    float alpha, beta;
    std::memcpy(&alpha, &key.alpha_bits, sizeof(alpha));
    std::memcpy(&beta, &key.beta_bits, sizeof(beta));
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
      dnnl::post_ops ops;
      ops.append_sum(beta);
      attr.set_post_ops(ops);
    }
    dnnl::matmul::primitive_desc pd(*desc, attr, cpu_engine());
    entry.impl = pd.impl_info_str();
    if (entry.impl.find("ref") == std::string::npos) {
      entry.prim.emplace(pd);
      entry.pd = pd;
    }
  } catch (const dnnl::error&) {
    // No implementation for this signature on this CPU: leave prim empty.
  }
  return entry;
}

// Returns a copy (primitive handles are reference-counted), so a concurrent clear() is harmless.
// A new entry is created outside the lock (oneDNN compiles kernels for it), so
// that a serving thread meeting a new prefill length does not hold up the
// others; when two threads create the same entry, the first one stored wins.
PrimEntry lookup(const PrimKey& key) {
  static std::mutex mu;
  static std::unordered_map<PrimKey, PrimEntry, PrimKeyHash> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  PrimEntry made = make_entry(key);
  std::lock_guard<std::mutex> lock(mu);
  // Bound the cache: shapes in a training run repeat, so this only trims pathological use.
  if (cache.size() >= 4096) cache.clear();
  return cache.emplace(key, std::move(made)).first->second;
}

PrimKey make_key(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
                 int64_t ldc, bool bias, float alpha = 1.0f, float beta = 0.0f) {
  PrimKey key;
  std::memset(&key, 0, sizeof(key));  // padding takes part in operator==
  key.m = m;
  key.n = n;
  key.k = k;
  key.lda = lda;
  key.ldb = ldb;
  key.ldc = ldc;
  key.alpha_bits = bits_of(alpha);
  key.beta_bits = bits_of(beta);
  key.dtype = uint8_t(dtype);
  key.trans_a = trans_a;
  key.trans_b = trans_b;
  key.bias = bias;
  return key;
}

// This thread's scratchpad for primitives, grown to the largest one asked for.
void* thread_scratchpad(size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buf;
  if (bytes > buf.size) {
    std::free(buf.data);
    buf.size = (bytes + 63) / 64 * 64;
    buf.data = std::aligned_alloc(64, buf.size);
    if (!buf.data) {
      buf.size = 0;
      fail("matmul", "cannot allocate a ", bytes, "-byte scratchpad for oneDNN");
    }
  }
  return buf.data;
}

// Runs C = alpha * (op(A) op(B) + bias) + beta * C (oneDNN scales after the
// bias; gemm_bias passes alpha 1) through a cached primitive, on any thread;
// false (nothing written) when oneDNN has no optimised kernel for it.
bool run_primitive(const PrimKey& key, const void* a, const void* b, void* c, const float* bias) {
  PrimEntry e = lookup(key);
  if (!e.prim) return false;
  const dnnl::matmul::primitive_desc& pd = e.pd;
  dnnl::engine& engine = cpu_engine();
  const dnnl::memory::desc scratch_desc = pd.scratchpad_desc();
  dnnl::memory scratch(scratch_desc, engine, thread_scratchpad(std::max<size_t>(scratch_desc.get_size(), 1)));
  dnnl::memory ma(pd.src_desc(), engine, const_cast<void*>(a));
  dnnl::memory mb(pd.weights_desc(), engine, const_cast<void*>(b));
  dnnl::memory mc(pd.dst_desc(), engine, c);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(pd.bias_desc(), engine, const_cast<float*>(bias)));
  args.emplace(DNNL_ARG_SCRATCHPAD, scratch);
  dnnl::stream stream(engine);
  e.prim->execute(stream, args);
  stream.wait();
  return true;
}

// A float32 product through the matmul primitive: false when this shape stays
// on sgemm (or the packed GEMM), or when oneDNN declines it.
bool gemm_f32_primitive(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                        int64_t lda, const float* b, int64_t ldb, const float* bias, float beta, float* c,
                        int64_t ldc) {
  if (k == 0 || !sgemm_uses_matmul_primitive(trans_a, trans_b, m, n, k, bias != nullptr)) return false;
  return run_primitive(make_key(DType::f32, trans_a, trans_b, m, n, k, lda, ldb, ldc, bias != nullptr, alpha, beta),
                       a, b, c, bias);
}

}  // namespace

void set_sgemm_impl(SgemmImpl impl) { g_sgemm_impl.store(impl); }
SgemmImpl sgemm_impl() { return g_sgemm_impl.load(); }

bool sgemm_uses_packed(int64_t m, int64_t n, int64_t k) {
  if (!sgemm_packed_available()) return false;
  switch (g_sgemm_impl.load(std::memory_order_relaxed)) {
    case SgemmImpl::onednn:
    case SgemmImpl::onednn_matmul: return false;
    case SgemmImpl::ember: return true;
    case SgemmImpl::automatic: break;
  }
#if defined(__AVX512F__)
  // oneDNN's AVX-512 kernels do twice the work per instruction of ours.
  (void)m, (void)n, (void)k;
  return false;
#else
  // Thin products (decode: a few rows) are bound by reading B once; packing B
  // first would read it twice. oneDNN's kernels for them are measured faster.
  return m >= 64 && n >= 64 && k >= 16;
#endif
}

bool sgemm_uses_matmul_primitive(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, bool bias) {
  // Inside a parallel region each product of a batch runs on its own thread,
  // which sgemm does without the primitive's per-call set-up.
  if (omp_in_parallel()) return false;
  switch (g_sgemm_impl.load(std::memory_order_relaxed)) {
    case SgemmImpl::onednn:
    case SgemmImpl::ember: return false;
    case SgemmImpl::onednn_matmul: return true;
    case SgemmImpl::automatic: break;
  }
#if defined(__AVX512F__)
  // Only where sgemm is measured slow (docs/PERFORMANCE.md, "GEMM: sgemm or
  // the matmul primitive"; Zen 4, two threads): A Bᵀ into a narrow C from a
  // longer k (a linear layer narrowing its input, e.g. the MLP's projection:
  // 1.24x at n 384, k 1536; 1.42x at n 256, k 1024), and Aᵀ B into a C many
  // times taller than wide (the tied embedding's weight gradient: 1.04-1.11x).
  // Elsewhere sgemm is as fast or up to 15% faster, and on a few rows
  // (decode) the primitive's set-up costs more than the product. With a bias
  // the primitive always wins: it adds it as it writes C, where sgemm needs a
  // pass writing the bias into C first (about 15% of a 384-deep product).
  if (m < 64 || n < 16 || k < 16) return false;
  if (bias) return true;
  if (!trans_a && trans_b) return n <= 1024 && k > n;
  if (trans_a && !trans_b) return m >= 16 * n;
  return false;
#else
  (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)bias;
  return false;
#endif
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (sgemm_uses_packed(m, n, k)) {
    sgemm_packed(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, packed_threads());
    return;
  }
  if (gemm_f32_primitive(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, nullptr, beta, c, ldc)) return;
  if (k == 0) {  // an empty sum, which sgemm refuses: C = beta C (not read when beta is 0)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) fail("matmul", "oneDNN sgemm failed with status ", int(st), " for m=", m, " n=", n, " k=", k);
}

void gemm_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, const float* bias, float* c, int64_t ldc, float beta) {
  if (m == 0 || n == 0) return;
  if (sgemm_uses_packed(m, n, k)) {
    sgemm_packed(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, packed_threads(), bias);
    return;
  }
  if (gemm_f32_primitive(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, bias, beta, c, ldc)) return;
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) std::copy(bias, bias + n, ci);
    else
      for (int64_t j = 0; j < n; ++j) ci[j] = beta * ci[j] + bias[j];
  }
  gemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c, ldc);
}

void gemm_prepacked(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed_b,
                    const float* bias, float* c, int64_t ldc, float beta) {
  sgemm_prepacked(false, m, n, k, 1.0f, a, lda, packed_b, beta, c, ldc, packed_threads(), bias);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(m), int(n),
              int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

void set_lowp_gemm_enabled(bool enabled) { g_lowp_enabled = enabled; }
bool lowp_gemm_enabled() { return g_lowp_enabled; }

const char* lowp_gemm_impl(DType dtype, int64_t m, int64_t n, int64_t k) {
  if (dtype != DType::bf16 && dtype != DType::f16) return "";
  static thread_local std::string impl;
  PrimEntry e = lookup(make_key(dtype, false, false, m, n, k, std::max<int64_t>(k, 1),
                                       std::max<int64_t>(n, 1), std::max<int64_t>(n, 1), false));
  impl = e.prim ? e.impl : "";
  return impl.c_str();
}

bool gemm_lowp(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
               const void* b, int64_t ldb, void* c, int64_t ldc, const float* bias) {
  if (!g_lowp_enabled || (dtype != DType::bf16 && dtype != DType::f16)) return false;
  if (m == 0 || n == 0 || k == 0) return false;  // degenerate shapes: the caller fills
  return run_primitive(make_key(dtype, trans_a, trans_b, m, n, k, lda, ldb, ldc, bias != nullptr), a, b, c, bias);
}

}  // namespace ember::cpu
