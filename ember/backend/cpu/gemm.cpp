// GEMM bindings: float32 through ember's packed AVX2 GEMM where it is the
// faster one (AVX2 CPUs without AVX-512, products of at least 64 x 64),
// oneDNN's matmul primitive on AVX-512 CPUs for the layouts sgemm is slow at
// (its brgemm kernels keep their speed where sgemm's drop by up to a third;
// the bias is added as C is written), and oneDNN's sgemm otherwise (thin
// decode products, products inside a parallel region);
// CBLAS for float64; oneDNN's matmul primitive for bf16/f16 where the CPU has
// native 16-bit dot products. The primitives and their cache are in
// onednn_matmul.cpp; frozen (prepacked) weights in packed_weights.cpp.
#include "ember/backend/cpu/gemm.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "ember/backend/cpu/onednn_matmul.h"
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

std::atomic<bool> g_lowp_enabled{true};

onednn::MatmulKey make_key(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                           int64_t ldb, int64_t ldc, bool bias, float alpha = 1.0f, float beta = 0.0f) {
  onednn::MatmulKey key;
  key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
  key.alpha = alpha, key.beta = beta;
  key.dtype = dtype;
  key.trans_a = trans_a, key.trans_b = trans_b;
  key.bias = bias;
  return key;
}

// A float32 product through the matmul primitive: false when this shape stays
// on sgemm (or the packed GEMM), or when oneDNN declines it.
bool gemm_f32_primitive(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                        int64_t lda, const float* b, int64_t ldb, const float* bias, float beta, float* c,
                        int64_t ldc) {
  if (k == 0 || !sgemm_uses_matmul_primitive(trans_a, trans_b, m, n, k, bias != nullptr)) return false;
  return onednn::run_matmul(
      make_key(DType::f32, trans_a, trans_b, m, n, k, lda, ldb, ldc, bias != nullptr, alpha, beta), a, b, c, bias);
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
  impl = onednn::matmul_impl(make_key(dtype, false, false, m, n, k, std::max<int64_t>(k, 1), std::max<int64_t>(n, 1),
                                      std::max<int64_t>(n, 1), false));
  return impl.c_str();
}

bool gemm_lowp(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
               const void* b, int64_t ldb, void* c, int64_t ldc, const float* bias) {
  if (!g_lowp_enabled || (dtype != DType::bf16 && dtype != DType::f16)) return false;
  if (m == 0 || n == 0 || k == 0) return false;  // degenerate shapes: the caller fills
  return onednn::run_matmul(make_key(dtype, trans_a, trans_b, m, n, k, lda, ldb, ldc, bias != nullptr), a, b, c,
                            bias);
}

}  // namespace ember::cpu
