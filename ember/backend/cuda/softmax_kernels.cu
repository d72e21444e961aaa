// CUDA softmax kernels. Along the last axis (inner == 1) a warp (rows of up to
// 1024 elements) or a block (longer rows, up to 1024 threads) owns a row: a max
// pass, an exp-and-sum pass and an output pass, each reduced across the group
// with warp shuffles and shared memory; the row is re-read from L1/L2, so
// memory sees about one read and one write. Along another axis a thread owns a
// column (adjacent threads, adjacent columns: coalesced). Arithmetic in float
// for float32 and the 16-bit types, double for float64, as on the CPU.
//
// Every element is read and written by the same thread after the row's
// reductions, so y may be x's own buffer.
#include "ember/backend/cuda/softmax_kernels.h"

#include "ember/backend/cuda/block_reduce.cuh"

namespace ember::cuda {
namespace {

template <typename T, bool kWarp, bool kLog>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t n) {
  using A = acc_t<T>;
  RowGroup<kWarp> g;
  for (int64_t row = g.first; row < rows; row += g.step) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    A m = MaxOp<A>::init();
    for (int64_t i = g.lane; i < n; i += g.width) m = MaxOp<A>::combine(m, load(xr + i));
    m = group_allreduce<kWarp, A, MaxOp<A>>(m);
    A s = 0;
    for (int64_t i = g.lane; i < n; i += g.width) s += ::exp(load(xr + i) - m);
    s = group_allreduce<kWarp, A, SumOp<A>>(s);
    if constexpr (kLog) {
      const A lse = m + ::log(s);
      for (int64_t i = g.lane; i < n; i += g.width) store(yr + i, load(xr + i) - lse);
    } else {
      const A inv = A(1) / s;
      for (int64_t i = g.lane; i < n; i += g.width) store(yr + i, ::exp(load(xr + i) - m) * inv);
    }
  }
}

template <typename T, bool kLog>
__global__ void softmax_cols_kernel(const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  using A = acc_t<T>;
  const int64_t cols = outer * inner;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < cols; k += int64_t(blockDim.x) * gridDim.x) {
    const int64_t base = (k / inner) * n * inner + k % inner;
    const T* xc = x + base;
    T* yc = y + base;
    A m = MaxOp<A>::init();
    for (int64_t r = 0; r < n; ++r) m = MaxOp<A>::combine(m, load(xc + r * inner));
    A s = 0;
    for (int64_t r = 0; r < n; ++r) s += ::exp(load(xc + r * inner) - m);
    if constexpr (kLog) {
      const A lse = m + ::log(s);
      for (int64_t r = 0; r < n; ++r) store(yc + r * inner, load(xc + r * inner) - lse);
    } else {
      const A inv = A(1) / s;
      for (int64_t r = 0; r < n; ++r) store(yc + r * inner, ::exp(load(xc + r * inner) - m) * inv);
    }
  }
}

template <typename T, bool kWarp, bool kLog>
__global__ void softmax_backward_rows_kernel(const T* y, const T* gr, T* dx, int64_t rows, int64_t n) {
  using A = acc_t<T>;
  RowGroup<kWarp> g;
  for (int64_t row = g.first; row < rows; row += g.step) {
    const T* yr = y + row * n;
    const T* grow = gr + row * n;
    T* dr = dx + row * n;
    A s = 0;
    for (int64_t i = g.lane; i < n; i += g.width) s += kLog ? load(grow + i) : load(grow + i) * load(yr + i);
    s = group_allreduce<kWarp, A, SumOp<A>>(s);
    for (int64_t i = g.lane; i < n; i += g.width) {
      if constexpr (kLog) store(dr + i, load(grow + i) - ::exp(load(yr + i)) * s);
      else store(dr + i, load(yr + i) * (load(grow + i) - s));
    }
  }
}

template <typename T, bool kLog>
__global__ void softmax_backward_cols_kernel(const T* y, const T* gr, T* dx, int64_t outer, int64_t n, int64_t inner) {
  using A = acc_t<T>;
  const int64_t cols = outer * inner;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < cols; k += int64_t(blockDim.x) * gridDim.x) {
    const int64_t base = (k / inner) * n * inner + k % inner;
    A s = 0;
    for (int64_t r = 0; r < n; ++r) {
      const int64_t j = base + r * inner;
      s += kLog ? load(gr + j) : load(gr + j) * load(y + j);
    }
    for (int64_t r = 0; r < n; ++r) {
      const int64_t j = base + r * inner;
      if constexpr (kLog) store(dx + j, load(gr + j) - ::exp(load(y + j)) * s);
      else store(dx + j, load(y + j) * (load(gr + j) - s));
    }
  }
}

template <typename T, bool kLog>
void forward_typed(const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& y, const char* op) {
  const T* px = data_of<T>(x);
  T* py = data_of<T>(y);
  if (inner == 1) {
    RowLaunch L = row_launch(outer, n);
    if (L.warp) softmax_rows_kernel<T, true, kLog><<<L.grid, L.block, 0, stream()>>>(px, py, outer, n);
    else softmax_rows_kernel<T, false, kLog><<<L.grid, L.block, 0, stream()>>>(px, py, outer, n);
  } else {
    softmax_cols_kernel<T, kLog><<<grid_for(outer * inner), kThreads, 0, stream()>>>(px, py, outer, n, inner);
  }
  check_launch(op);
}

template <typename T, bool kLog>
void backward_typed(const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner, Tensor& dx,
                    const char* op) {
  const T* py = data_of<T>(y);
  const T* pg = data_of<T>(g);
  T* pd = data_of<T>(dx);
  if (inner == 1) {
    RowLaunch L = row_launch(outer, n);
    if (L.warp) softmax_backward_rows_kernel<T, true, kLog><<<L.grid, L.block, 0, stream()>>>(py, pg, pd, outer, n);
    else softmax_backward_rows_kernel<T, false, kLog><<<L.grid, L.block, 0, stream()>>>(py, pg, pd, outer, n);
  } else {
    softmax_backward_cols_kernel<T, kLog>
        <<<grid_for(outer * inner), kThreads, 0, stream()>>>(py, pg, pd, outer, n, inner);
  }
  check_launch(op);
}

}  // namespace

void softmax_forward(bool log, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& y) {
  const char* op = log ? "log_softmax" : "softmax";
  if (n == 0 || outer * inner == 0) return;
  visit_device_floating(x.dtype(), op, [&]<typename T>() {
    if (log) forward_typed<T, true>(x, outer, n, inner, y, op);
    else forward_typed<T, false>(x, outer, n, inner, y, op);
  });
}

void softmax_backward(bool log, const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner,
                      Tensor& dx) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  if (n == 0 || outer * inner == 0) return;
  visit_device_floating(y.dtype(), op, [&]<typename T>() {
    if (log) backward_typed<T, true>(y, g, outer, n, inner, dx, op);
    else backward_typed<T, false>(y, g, outer, n, inner, dx, op);
  });
}

}  // namespace ember::cuda
