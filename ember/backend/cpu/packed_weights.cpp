// Frozen weights in the layout of the kernel that reads them (see packed_weights.h).
#include "ember/backend/cpu/packed_weights.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>

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
