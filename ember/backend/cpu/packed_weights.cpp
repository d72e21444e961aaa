// Frozen weights in the layout of the kernel that reads them (see packed_weights.h).
#include "ember/backend/cpu/packed_weights.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/onednn_matmul.h"
#include "ember/backend/cpu/sgemm_packed.h"
#include "ember/core/error.h"

namespace ember::cpu {
namespace {

bool blocked_layout_available() { return onednn::blocked_weights_bytes(64, 64) > 0; }

// The epilogue as loops over C's rows, after a product that wrote A B + bias
// (+ beta C) into C: the ember_panels path, and the fallback when oneDNN
// declines a fused form.
void apply_epilogue_rows(int64_t m, int64_t n, float* c, int64_t ldc, const GemmEpilogue& ep) {
  if (!ep.activation && !ep.residual) return;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && m * n >= 65536)
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (ep.activation) unary_block_f32(*ep.activation, ci, ci, n);
    if (ep.residual) binary_block_f32(BinaryOp::add, ci, 1, ep.residual + i * ldc, 1, ci, n);
  }
}

#if defined(__AVX512F__)
// A few rows times weights in oneDNN's blocked layout (onednn::BlockedGeometry:
// 16 x 64 tiles, each 64-column strip contiguous), as a stream over the
// weights: each strip's 64 sums per row stay in four registers while its
// tiles pass once. A compiled prefill multiplies its last position's row by
// the head (`small`: 25 MB of weights for one row), where brgemm's kernel read
// them at about 18 GB/s on two threads; this is a plain bandwidth-bound loop.
// C = A B + bias + beta C, the sums over k in order.
template <int Rows>
void gemv_blocked_rows(int64_t n, int64_t k, const float* a, int64_t lda, const float* w,
                       const onednn::BlockedGeometry& geo, const float* bias, float* c, int64_t ldc, float beta) {
  const int64_t strips = (n + 63) / 64, kblocks = (k + 15) / 16;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && strips > 1)
  for (int64_t s = 0; s < strips; ++s) {
    __m512 acc[Rows][4];
    for (int i = 0; i < Rows; ++i)
      for (int q = 0; q < 4; ++q) acc[i][q] = _mm512_setzero_ps();
    const float* strip = w + s * geo.nb_stride;
    for (int64_t kb = 0; kb < kblocks; ++kb) {
      const float* tile = strip + kb * geo.kb_stride;
      const int64_t depth = std::min<int64_t>(16, k - kb * 16);
      for (int64_t r = 0; r < depth; ++r) {
        const float* wr = tile + r * 64;
        const __m512 w0 = _mm512_loadu_ps(wr), w1 = _mm512_loadu_ps(wr + 16), w2 = _mm512_loadu_ps(wr + 32),
                     w3 = _mm512_loadu_ps(wr + 48);
        for (int i = 0; i < Rows; ++i) {
          const __m512 x = _mm512_set1_ps(a[i * lda + kb * 16 + r]);
          acc[i][0] = _mm512_fmadd_ps(x, w0, acc[i][0]);
          acc[i][1] = _mm512_fmadd_ps(x, w1, acc[i][1]);
          acc[i][2] = _mm512_fmadd_ps(x, w2, acc[i][2]);
          acc[i][3] = _mm512_fmadd_ps(x, w3, acc[i][3]);
        }
      }
    }
    for (int i = 0; i < Rows; ++i)
      for (int q = 0; q < 4; ++q) {
        const int64_t col = s * 64 + q * 16;
        if (col >= n) break;
        const __mmask16 mask = n - col >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - col)) - 1);
        __m512 v = acc[i][q];
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, bias + col));
        float* ci = c + i * ldc + col;
        if (beta != 0.0f) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, ci), v);
        _mm512_mask_storeu_ps(ci, mask, v);
      }
  }
}
#endif

// Rows at most this many take gemv_blocked's stream instead of the primitive.
constexpr int64_t kBlockedGemvRows = 4;

// False (nothing written) when the rows are too many, the layout is not the
// geometry the stream reads, or this build has no AVX-512.
bool gemv_blocked(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w, const float* bias,
                  float* c, int64_t ldc, float beta) {
#if defined(__AVX512F__)
  if (m < 1 || m > kBlockedGemvRows) return false;
  const onednn::BlockedGeometry geo = onednn::blocked_geometry(k, n);
  if (!geo.valid) return false;
  switch (m) {
    case 1: gemv_blocked_rows<1>(n, k, a, lda, w, geo, bias, c, ldc, beta); break;
    case 2: gemv_blocked_rows<2>(n, k, a, lda, w, geo, bias, c, ldc, beta); break;
    case 3: gemv_blocked_rows<3>(n, k, a, lda, w, geo, bias, c, ldc, beta); break;
    default: gemv_blocked_rows<4>(n, k, a, lda, w, geo, bias, c, ldc, beta); break;
  }
  return true;
#else
  (void)m, (void)n, (void)k, (void)a, (void)lda, (void)w, (void)bias, (void)c, (void)ldc, (void)beta;
  return false;
#endif
}

}  // namespace

const char* weight_layout_name(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::none: return "none";
    case WeightLayout::ember_panels: return "ember_panels";
    case WeightLayout::onednn_blocked: return "onednn_blocked";
  }
  return "unknown";
}

WeightLayout frozen_weight_layout() {
  const WeightLayout panels = sgemm_packed_available() ? WeightLayout::ember_panels : WeightLayout::none;
  switch (sgemm_impl()) {
    case SgemmImpl::onednn: return WeightLayout::none;
    case SgemmImpl::ember: return panels;
    case SgemmImpl::onednn_matmul:
      return blocked_layout_available() ? WeightLayout::onednn_blocked : WeightLayout::none;
    case SgemmImpl::automatic: break;
  }
#if defined(__AVX512F__)
  // oneDNN's AVX-512 brgemm on its own layout is 1.03-1.10x ember's AVX2
  // kernel on its panels at a prefill's 256 rows (docs/PERFORMANCE.md).
  if (blocked_layout_available()) return WeightLayout::onednn_blocked;
#endif
  return panels;
}

int64_t packed_weight_floats(WeightLayout layout, int64_t k, int64_t n) {
  if (k < 1 || n < 1) return 0;
  switch (layout) {
    case WeightLayout::none: return 0;
    case WeightLayout::ember_panels: return sgemm_packed_available() ? packed_b_floats(k, n) : 0;
    case WeightLayout::onednn_blocked: return (onednn::blocked_weights_bytes(k, n) + 3) / 4;
  }
  return 0;
}

void pack_weight(WeightLayout layout, bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst) {
  if (packed_weight_floats(layout, k, n) == 0)
    fail("pack_weight", "a ", k, " x ", n, " weight cannot be packed in layout ", weight_layout_name(layout),
         " on this CPU");
  if (layout == WeightLayout::ember_panels) pack_b_whole(trans_b, k, n, b, ldb, dst);
  else onednn::pack_blocked_weights(trans_b, k, n, b, ldb, dst);
}

bool epilogue_activation_supported(WeightLayout layout, UnaryOp op) {
  switch (layout) {
    case WeightLayout::none: return false;
    case WeightLayout::ember_panels: return op != UnaryOp::logical_not;
    case WeightLayout::onednn_blocked: return onednn::fusable_activation(op);
  }
  return false;
}

void gemm_packed_weights(WeightLayout layout, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                         const float* packed_b, const float* bias, float* c, int64_t ldc, float beta,
                         const GemmEpilogue& ep) {
  if (ep.activation && beta != 0.0f)
    fail("linear_prepacked", "an activation epilogue needs beta 0 (got ", beta, ")");
  if (ep.activation && !epilogue_activation_supported(layout, *ep.activation))
    fail("linear_prepacked", "activation ", unary_op_name(*ep.activation), " cannot be fused in layout ",
         weight_layout_name(layout));
  if (m == 0 || n == 0) return;
  if (ep.residual) {
    // Both span (m - 1) ldc + n floats; the panels path copies the residual
    // into C before the product, so any overlap would corrupt it.
    const auto span = uintptr_t(((m - 1) * ldc + n) * int64_t(sizeof(float)));
    const auto r0 = reinterpret_cast<uintptr_t>(ep.residual), c0 = reinterpret_cast<uintptr_t>(c);
    if (r0 < c0 + span && c0 < r0 + span) fail("linear_prepacked", "the residual may not overlap the output");
  }
  if (layout == WeightLayout::onednn_blocked) {
    if (gemv_blocked(m, n, k, a, lda, packed_b, bias, c, ldc, beta)) {
      apply_epilogue_rows(m, n, c, ldc, ep);
      return;
    }
    onednn::MatmulKey key;
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldc = ldc;
    key.beta = beta;
    key.bias = bias != nullptr;
    key.blocked_weights = true;
    key.activate = ep.activation.has_value();
    if (ep.activation) key.activation = *ep.activation;
    key.residual = ep.residual != nullptr;
    if (onednn::run_matmul(key, a, packed_b, c, bias, ep.residual)) return;
    // oneDNN declined the fused form: the plain product, then the epilogue.
    key.activate = key.residual = false;
    if (!onednn::run_matmul(key, a, packed_b, c, bias))
      fail("linear_prepacked", "oneDNN has no kernel for a ", m, " x ", n, " x ", k,
           " product with blocked weights on this CPU");
    apply_epilogue_rows(m, n, c, ldc, ep);
    return;
  }
  if (layout != WeightLayout::ember_panels || !sgemm_packed_available())
    fail("linear_prepacked", "weights packed in layout ", weight_layout_name(layout),
         " cannot be multiplied on this CPU");
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (ep.residual && !ep.activation) {
    // C = beta C + residual first, then the product accumulated onto it (the
    // bias added as C is written): one pass over C fewer than adding after.
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && m * n >= 65536)
    for (int64_t i = 0; i < m; ++i) {
      float* ci = c + i * ldc;
      const float* ri = ep.residual + i * ldc;
      if (beta == 0.0f) std::copy(ri, ri + n, ci);
      else
        for (int64_t j = 0; j < n; ++j) ci[j] = beta * ci[j] + ri[j];
    }
    sgemm_prepacked(false, m, n, k, 1.0f, a, lda, packed_b, 1.0f, c, ldc, threads, bias);
    return;
  }
  sgemm_prepacked(false, m, n, k, 1.0f, a, lda, packed_b, beta, c, ldc, threads, bias);
  apply_epilogue_rows(m, n, c, ldc, ep);
}

}  // namespace ember::cpu
