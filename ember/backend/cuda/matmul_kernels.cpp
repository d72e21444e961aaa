// Batched, broadcasting matrix products on cuBLAS (see matmul_kernels.h). The
// layout rules are the CPU kernel's (shared: backend/matmul_plan.h): a matrix
// whose last two dimensions are row-major or column-major is read in place with
// a transpose flag, a batch that folds into rows is one GEMM, and other
// layouts are copied. cuBLAS is column-major, so the row-major C = A B runs as
// the column-major Cᵀ = Bᵀ Aᵀ, which reads the same memory.
#include "ember/backend/cuda/matmul_kernels.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <optional>
#include <vector>

#include "ember/backend/cuda/cuda_context.h"
#include "ember/backend/cuda/elementwise_kernels.h"
#include "ember/backend/matmul_plan.h"
#include "ember/core/error.h"

namespace ember::cuda {
namespace {

using matmul_plan::BatchPlan;
using matmul_plan::layout_of;
using matmul_plan::make_plan;
using matmul_plan::MatLayout;

std::atomic<bool> g_allow_tf32{false};

int as_int(int64_t v, const char* what, const char* op) {
  if (v < 0 || v > INT_MAX) fail(op, "cuBLAS takes ", what, " below 2^31, got ", v);
  return int(v);
}

struct GemmTypes {
  cudaDataType_t data;
  cublasComputeType_t compute;
  bool f64;
};

GemmTypes gemm_types(DType dt, const char* op) {
  switch (dt) {
    case DType::f32:
      return {CUDA_R_32F, g_allow_tf32.load(std::memory_order_relaxed) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                       : CUBLAS_COMPUTE_32F,
              false};
    case DType::f64: return {CUDA_R_64F, CUBLAS_COMPUTE_64F, true};
    case DType::bf16: return {CUDA_R_16BF, CUBLAS_COMPUTE_32F, false};
    case DType::f16: return {CUDA_R_16F, CUBLAS_COMPUTE_32F, false};
    default: fail(op, "expects floating-point operands, got ", dtype_name(dt));
  }
}

// x itself when its matrices are GEMM operands, else a contiguous copy.
Tensor as_operand(const Tensor& x) {
  if (layout_of(x)) return x;
  Tensor c = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy_cast(x, c);
  return c;
}

// The longest run of batches (a product of trailing batch dimensions) that every
// run shares, with a's and b's matrices at even steps within it: each run is one
// strided-batched call. The innermost batch dimension always qualifies.
int64_t uniform_run(const BatchPlan& p, int64_t& step_a, int64_t& step_b) {
  std::vector<int64_t> runs;
  int64_t len = 1;
  for (size_t d = p.batch.size(); d-- > 0;) {
    len *= p.batch[d];
    runs.push_back(len);
  }
  std::reverse(runs.begin(), runs.end());  // longest first
  for (int64_t run : runs) {
    if (run <= 1) break;
    int64_t da = p.off_a[1] - p.off_a[0], db = p.off_b[1] - p.off_b[0];
    bool ok = true;
    for (int64_t i = 0; i < p.batches && ok; ++i) {
      int64_t c = i - i % run, j = i % run;
      ok = p.off_a[size_t(i)] == p.off_a[size_t(c)] + j * da && p.off_b[size_t(i)] == p.off_b[size_t(c)] + j * db;
    }
    if (ok) {
      step_a = da;
      step_b = db;
      return run;
    }
  }
  step_a = step_b = 0;
  return 1;
}

}  // namespace

void set_matmul_allow_tf32(bool allow) { g_allow_tf32.store(allow, std::memory_order_relaxed); }
bool matmul_allow_tf32() { return g_allow_tf32.load(std::memory_order_relaxed); }

void gemm_batched(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                  const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b,
                  double beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch, const char* op) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  const GemmTypes ty = gemm_types(dtype, op);
  const size_t elem = dtype_size(dtype);
  if (k <= 0) {  // an empty sum: C = beta C
    if (beta == 1.0) return;
    if (beta != 0.0) fail(op, "gemm with k == 0 supports beta 0 or 1, got ", beta);
    for (int64_t i = 0; i < batch; ++i)
      check(cudaMemset2DAsync(static_cast<char*>(c) + i * stride_c * int64_t(elem), size_t(ldc) * elem, 0,
                              size_t(n) * elem, size_t(m), stream()),
            op);
    return;
  }
  // Row-major C [m, n] is column-major Cᵀ [n, m] = op(B)ᵀ op(A)ᵀ: cuBLAS's first
  // operand is b, its second a, each with its own flag.
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int im = as_int(n, "matrix sizes", op), in = as_int(m, "matrix sizes", op), ik = as_int(k, "matrix sizes", op);
  const int ilda = as_int(ldb, "leading dimensions", op), ildb = as_int(lda, "leading dimensions", op);
  const int ildc = as_int(ldc, "leading dimensions", op);
  cublasHandle_t handle = cublas_handle();
  const float af = float(alpha), bf = float(beta);
  const void* pa = ty.f64 ? static_cast<const void*>(&alpha) : static_cast<const void*>(&af);
  const void* pb = ty.f64 ? static_cast<const void*>(&beta) : static_cast<const void*>(&bf);
  for (int64_t i0 = 0; i0 < batch; i0 += INT_MAX) {
    const int count = int(std::min<int64_t>(batch - i0, INT_MAX));
    const char* a0 = static_cast<const char*>(a) + i0 * stride_a * int64_t(elem);
    const char* b0 = static_cast<const char*>(b) + i0 * stride_b * int64_t(elem);
    char* c0 = static_cast<char*>(c) + i0 * stride_c * int64_t(elem);
    if (count == 1) {
      check_cublas(cublasGemmEx(handle, op_b, op_a, im, in, ik, pa, b0, ty.data, ilda, a0, ty.data, ildb, pb, c0,
                                ty.data, ildc, ty.compute, CUBLAS_GEMM_DEFAULT),
                   op);
    } else {
      check_cublas(cublasGemmStridedBatchedEx(handle, op_b, op_a, im, in, ik, pa, b0, ty.data, ilda, stride_b, a0,
                                              ty.data, ildb, stride_a, pb, c0, ty.data, ildc, stride_c, count,
                                              ty.compute, CUBLAS_GEMM_DEFAULT),
                   op);
    }
  }
}

void matmul(const Tensor& a, const Tensor& b, Tensor& out, const Tensor& bias) {
  constexpr const char* op = "matmul";
  if (out.numel() == 0) return;
  set_device(out.device());
  gemm_types(out.dtype(), op);  // rejects non-floating dtypes with the CPU's message
  // The bias (or nothing) is C's starting value: the GEMM adds the product to it
  // with beta = 1 and rounds once.
  if (bias.defined()) copy_cast(bias, out);
  const int64_t k = a.shape().back();
  if (k == 0) {  // an empty sum: zeros, plus the bias
    if (!bias.defined()) fill(out, 0.0);
    return;
  }
  const double beta = bias.defined() ? 1.0 : 0.0;
  Tensor A = as_operand(a);
  Tensor B = as_operand(b);
  BatchPlan p = make_plan(A, B, out);
  const size_t elem = out.itemsize();
  const char* pa = static_cast<const char*>(A.raw_data());
  const char* pb = static_cast<const char*>(B.raw_data());
  char* pc = static_cast<char*>(out.raw_data());
  const int64_t mat_c = p.m * p.n;
  int64_t step_a = 0, step_b = 0;
  const int64_t run = p.batches > 1 ? uniform_run(p, step_a, step_b) : 1;
  for (int64_t c = 0; c < p.batches; c += run)
    gemm_batched(out.dtype(), p.la.trans, p.lb.trans, p.m, p.n, p.k, 1.0, pa + p.off_a[size_t(c)] * int64_t(elem),
                 p.la.ld, step_a, pb + p.off_b[size_t(c)] * int64_t(elem), p.lb.ld, step_b, beta,
                 pc + c * mat_c * int64_t(elem), p.n, mat_c, run, op);
}

}  // namespace ember::cuda
