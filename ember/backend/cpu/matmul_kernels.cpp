// Batched, broadcasting matrix products on the CPU, mapped onto GEMM calls
// (see matmul_kernels.h for the layout rules).
#include "ember/backend/cpu/matmul_kernels.h"
#include "ember/backend/matmul_plan.h"

#include <omp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/loops.h"

namespace ember::cpu {

Tensor strided_view(const Tensor& x, const Shape& shape, const Strides& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = x.offset() + offset;
  impl->dtype = x.dtype();
  impl->device = x.device();
  return Tensor(impl);
}

namespace {

using matmul_plan::BatchPlan;
using matmul_plan::layout_of;
using matmul_plan::make_plan;
using matmul_plan::MatLayout;

// x itself when its matrices are GEMM operands, else a contiguous copy; in
// `dtype` (a converting copy when it differs).
Tensor as_operand(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype && layout_of(x)) return x;
  Tensor c = Tensor::empty(x.shape(), dtype, x.device());
  copy_cast(x, c);
  return c;
}

// One GEMM of the batch: C_i = op(A_i) op(B_i) (+ C_i when beta is 1).
// Returns false only when a 16-bit call was declined (the caller falls back).
using GemmFn = bool (*)(const void* ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void* a,
                        int64_t lda, const void* b, int64_t ldb, void* c, int64_t ldc);


// Runs the plan: C (contiguous, batches * m * n elements of `elem` bytes).
bool run_plan(const BatchPlan& p, const void* a, const void* b, void* c, size_t elem, GemmFn fn, const void* ctx,
              bool over_batch) {
  auto one = [&](int64_t i) {
    const char* pa = static_cast<const char*>(a) + p.off_a[size_t(i)] * int64_t(elem);
    const char* pb = static_cast<const char*>(b) + p.off_b[size_t(i)] * int64_t(elem);
    char* pc = static_cast<char*>(c) + i * p.m * p.n * int64_t(elem);
    return fn(ctx, p.la.trans, p.lb.trans, p.m, p.n, p.k, pa, p.la.ld, pb, p.lb.ld, pc, p.n);
  };
  if (over_batch && p.batches > 1) {
    // Inside this region the GEMM library sees it is nested and stays on one thread.
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < p.batches; ++i) one(i);
    return true;
  }
  for (int64_t i = 0; i < p.batches; ++i)
    if (!one(i)) return false;
  return true;
}

struct BlasCtx {
  double beta;
};

template <typename T>
bool blas_call(const void* ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
               const void* b, int64_t ldb, void* c, int64_t ldc) {
  T beta = T(static_cast<const BlasCtx*>(ctx)->beta);
  gemm(ta, tb, m, n, k, T(1), static_cast<const T*>(a), lda, static_cast<const T*>(b), ldb, beta,
       static_cast<T*>(c), ldc);
  return true;
}

struct LowpCtx {
  DType dtype;
  const float* bias;
};

bool lowp_call(const void* ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
               const void* b, int64_t ldb, void* c, int64_t ldc) {
  auto* x = static_cast<const LowpCtx*>(ctx);
  return gemm_lowp(x->dtype, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, x->bias);
}

// Writes the bias (or zeros) into every row of the contiguous output, the
// starting value of C for a GEMM with beta = 1.
template <typename T>
void init_rows(T* c, int64_t rows, int64_t n, const std::vector<T>& bias) {
  parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* row = c + r * n;
      if (bias.empty()) std::fill(row, row + n, T(0));
      else std::copy(bias.begin(), bias.end(), row);
    }
  });
}

template <typename T>
std::vector<T> bias_values(const Tensor& bias) {
  if (!bias.defined()) return {};
  std::vector<T> v;
  for (auto x : bias.to_vector<double>()) v.push_back(T(x));
  return v;
}

bool use_over_batch(BatchThreads threads, const BatchPlan& p) {
  if (threads == BatchThreads::over_batch) return true;
  if (threads == BatchThreads::inside_gemm) return false;
  return p.batches > 1 && omp_get_max_threads() > 1 && 2.0 * double(p.m) * double(p.n) * double(p.k) <
                                                            kBatchParallelFlops;
}

// float32 / float64 through BLAS; `out` contiguous of the same type.
template <typename T>
void matmul_blas(const Tensor& a, const Tensor& b, Tensor& out, const Tensor& bias, BatchThreads threads) {
  std::vector<T> bv = bias_values<T>(bias);
  int64_t n = out.shape().back();
  int64_t rows = out.numel() / n;
  int64_t k = a.shape().back();
  if (k == 0) {  // an empty sum: zeros, plus the bias
    init_rows(out.data<T>(), rows, n, bv);
    return;
  }
  Tensor A = as_operand(a, dtype_of<T>::value);
  Tensor B = as_operand(b, dtype_of<T>::value);
  BatchPlan p = make_plan(A, B, out);
  if constexpr (std::is_same_v<T, float>) {
    if (!bv.empty() && p.batches == 1) {  // a linear layer: the bias goes in as C is written
      gemm_bias(p.la.trans, p.lb.trans, p.m, p.n, p.k, A.data<float>() + p.off_a[0], p.la.ld,
                B.data<float>() + p.off_b[0], p.lb.ld, bv.data(), out.data<float>(), p.n);
      return;
    }
  }
  if (!bv.empty()) init_rows(out.data<T>(), rows, n, bv);
  BlasCtx ctx{bv.empty() ? 0.0 : 1.0};
  // OpenBLAS (float64) runs its own thread pool; keep it out of OpenMP regions.
  bool over_batch = std::is_same_v<T, float> && use_over_batch(threads, p);
  run_plan(p, A.data<T>(), B.data<T>(), out.data<T>(), sizeof(T), blas_call<T>, &ctx, over_batch);
}

// bf16 / float16: oneDNN's native 16-bit matmul when it has one for this CPU
// (float32 accumulation, one rounding); else convert to float32, multiply, and
// round once.
void matmul_16bit(const Tensor& a, const Tensor& b, Tensor& out, const Tensor& bias, BatchThreads threads) {
  int64_t k = a.shape().back();
  if (k > 0 && lowp_gemm_enabled()) {
    Tensor A = as_operand(a, a.dtype());
    Tensor B = as_operand(b, b.dtype());
    BatchPlan p = make_plan(A, B, out);
    std::vector<float> bv = bias_values<float>(bias);
    LowpCtx ctx{out.dtype(), bv.empty() ? nullptr : bv.data()};
    // Sequential over the batch: oneDNN threads each product itself. The first
    // call decides for all (same shape), so a decline leaves out untouched.
    if (run_plan(p, A.raw_data(), B.raw_data(), out.raw_data(), out.itemsize(), lowp_call, &ctx, false)) return;
  }
  Tensor af = as_operand(a, DType::f32);
  Tensor bf = as_operand(b, DType::f32);
  Tensor cf = Tensor::empty(out.shape(), DType::f32, out.device());
  matmul_blas<float>(af, bf, cf, bias, threads);
  copy_cast(cf, out);
}

}  // namespace

void matmul(const Tensor& a, const Tensor& b, Tensor& out, const Tensor& bias, BatchThreads threads) {
  if (out.numel() == 0) return;
  switch (out.dtype()) {
    case DType::f32: return matmul_blas<float>(a, b, out, bias, threads);
    case DType::f64: return matmul_blas<double>(a, b, out, bias, threads);
    case DType::bf16:
    case DType::f16: return matmul_16bit(a, b, out, bias, threads);
    default: fail("matmul", "expects floating-point operands, got ", dtype_name(out.dtype()));
  }
}

}  // namespace ember::cpu
