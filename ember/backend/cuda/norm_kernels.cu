// CUDA norm kernels. Forward: a warp (C <= 1024) or a block owns a row and
// computes the two-pass mean / variance as the CPU does (sum, then the sum of
// squared deviations), then writes y; the row is re-read from L1/L2.
// Backward: dweight / dbias first, as column sums over the rows ([32 columns x
// 8 rows] blocks, rows cut into chunks whose float partials a second kernel
// adds in order), then dx, a row per warp or block like the forward.
// Arithmetic in float for float32 and the 16-bit types, double for float64.
#include "ember/backend/cuda/norm_kernels.h"

#include <algorithm>

#include "ember/backend/cuda/block_reduce.cuh"

namespace ember::cuda {
namespace {

constexpr int kColRows = 8;

template <typename T, bool kWarp>
__global__ void norm_forward_kernel(const T* x, const T* w, const T* b, acc_t<T> eps, T* y, acc_t<T>* mean,
                                    acc_t<T>* rstd, int64_t rows, int64_t C, bool rms) {
  using A = acc_t<T>;
  RowGroup<kWarp> g;
  for (int64_t row = g.first; row < rows; row += g.step) {
    const T* xr = x + row * C;
    T* yr = y + row * C;
    A mu = 0;
    if (!rms) {
      A s = 0;
      for (int64_t i = g.lane; i < C; i += g.width) s += load(xr + i);
      mu = group_allreduce<kWarp, A, SumOp<A>>(s) / A(C);
    }
    A ss = 0;
    for (int64_t i = g.lane; i < C; i += g.width) {
      A d = load(xr + i) - mu;
      ss += d * d;
    }
    ss = group_allreduce<kWarp, A, SumOp<A>>(ss);
    const A rs = A(1) / ::sqrt(ss / A(C) + eps);
    if (g.lane == 0) {
      if (mean) mean[row] = mu;
      rstd[row] = rs;
    }
    for (int64_t i = g.lane; i < C; i += g.width) {
      A v = (load(xr + i) - mu) * rs;
      if (w) v *= load(w + i);
      if (b) v += load(b + i);
      store(yr + i, v);
    }
  }
}

template <typename T, bool kWarp>
__global__ void norm_dx_kernel(const T* x, const T* w, const acc_t<T>* mean, const acc_t<T>* rstd, const T* gr, T* dx,
                               int64_t rows, int64_t C, bool rms) {
  using A = acc_t<T>;
  RowGroup<kWarp> g;
  const A inv_c = A(1) / A(C);
  for (int64_t row = g.first; row < rows; row += g.step) {
    const T* xr = x + row * C;
    const T* grow = gr + row * C;
    T* dr = dx + row * C;
    const A mu = mean ? mean[row] : A(0);
    const A rs = rstd[row];
    A sum_gw = 0, sum_gwx = 0;
    for (int64_t i = g.lane; i < C; i += g.width) {
      A xh = (load(xr + i) - mu) * rs;
      A gw = w ? load(grow + i) * load(w + i) : load(grow + i);
      sum_gw += gw;
      sum_gwx += gw * xh;
    }
    sum_gw = group_allreduce<kWarp, A, SumOp<A>>(sum_gw);
    sum_gwx = group_allreduce<kWarp, A, SumOp<A>>(sum_gwx);
    const A a = rms ? A(0) : sum_gw * inv_c;
    const A c = sum_gwx * inv_c;
    for (int64_t i = g.lane; i < C; i += g.width) {
      A xh = (load(xr + i) - mu) * rs;
      A gw = w ? load(grow + i) * load(w + i) : load(grow + i);
      store(dr + i, rs * (gw - a - xh * c));
    }
  }
}

// Partial column sums of g * xhat (pdw) and g (pdb) over rows
// [chunk * blockIdx.y, chunk * (blockIdx.y + 1)); either output may be null.
template <typename T>
__global__ void norm_dwdb_partial_kernel(const T* x, const acc_t<T>* mean, const acc_t<T>* rstd, const T* gr,
                                         int64_t rows, int64_t C, int64_t chunk, acc_t<T>* pdw, acc_t<T>* pdb) {
  using A = acc_t<T>;
  __shared__ A sw[kColRows][33];
  __shared__ A sb[kColRows][33];
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const int64_t i = int64_t(blockIdx.x) * 32 + tx;
  const int64_t begin = int64_t(blockIdx.y) * chunk, end = begin + chunk < rows ? begin + chunk : rows;
  A aw = 0, ab = 0;
  if (i < C) {
    for (int64_t r = begin + ty; r < end; r += kColRows) {
      const A gv = load(gr + r * C + i);
      const A mu = mean ? mean[r] : A(0);
      aw += gv * ((load(x + r * C + i) - mu) * rstd[r]);
      ab += gv;
    }
  }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && i < C) {
    for (int k = 1; k < kColRows; ++k) {
      aw += sw[k][tx];
      ab += sb[k][tx];
    }
    if (pdw) pdw[int64_t(blockIdx.y) * C + i] = aw;
    if (pdb) pdb[int64_t(blockIdx.y) * C + i] = ab;
  }
}

template <typename T>
__global__ void norm_dwdb_final_kernel(const acc_t<T>* pdw, const acc_t<T>* pdb, int64_t splits, int64_t C, T* dw,
                                       T* db) {
  using A = acc_t<T>;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < C; i += int64_t(blockDim.x) * gridDim.x) {
    A sw = 0, sb = 0;
    for (int64_t s = 0; s < splits; ++s) {
      if (dw) sw += pdw[s * C + i];
      if (db) sb += pdb[s * C + i];
    }
    if (dw) store(dw + i, sw);
    if (db) store(db + i, sb);
  }
}

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? data_of<T>(t) : nullptr;
}

template <typename T>
void forward_typed(bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                   Tensor& mean, Tensor& rstd, int64_t rows, int64_t C, const char* op) {
  using A = acc_t<T>;
  A* pm = mean.defined() ? data_of<A>(mean) : nullptr;
  RowLaunch L = row_launch(rows, C);
  if (L.warp)
    norm_forward_kernel<T, true><<<L.grid, L.block, 0, stream()>>>(data_of<T>(x), ptr_or_null<T>(weight),
                                                                   ptr_or_null<T>(bias), A(eps), data_of<T>(y), pm,
                                                                   data_of<A>(rstd), rows, C, rms);
  else
    norm_forward_kernel<T, false><<<L.grid, L.block, 0, stream()>>>(data_of<T>(x), ptr_or_null<T>(weight),
                                                                    ptr_or_null<T>(bias), A(eps), data_of<T>(y), pm,
                                                                    data_of<A>(rstd), rows, C, rms);
  check_launch(op);
}

template <typename T>
void backward_typed(bool rms, const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                    const Tensor& g, Tensor& dx, Tensor& dweight, Tensor& dbias, int64_t rows, int64_t C,
                    const char* op) {
  using A = acc_t<T>;
  const T* px = data_of<T>(x);
  const T* pw = ptr_or_null<T>(weight);
  const A* pm = mean.defined() ? data_of<A>(mean) : nullptr;
  const A* pr = data_of<A>(rstd);
  const T* pg = data_of<T>(g);
  T* pdw = dweight.defined() ? data_of<T>(dweight) : nullptr;
  T* pdb = dbias.defined() ? data_of<T>(dbias) : nullptr;
  if (pdw || pdb) {
    // Enough row chunks to fill the GPU; none when there are no rows (the sums are 0).
    const int64_t col_tiles = (C + 31) / 32;
    int64_t splits = std::min<int64_t>((rows + 63) / 64, std::max<int64_t>(1, 1024 / col_tiles));
    splits = std::min<int64_t>(splits, 65535);
    const int64_t chunk = splits > 0 ? (rows + splits - 1) / splits : 0;
    Tensor part = Tensor::empty({2, std::max<int64_t>(splits, 1), C}, rstd.dtype(), x.device());
    A* ppw = data_of<A>(part);
    A* ppb = ppw + std::max<int64_t>(splits, 1) * C;
    if (splits > 0) {
      norm_dwdb_partial_kernel<T><<<dim3(unsigned(col_tiles), unsigned(splits)), dim3(32, kColRows), 0, stream()>>>(
          px, pm, pr, pg, rows, C, chunk, pdw ? ppw : nullptr, pdb ? ppb : nullptr);
      check_launch(op);
    }
    norm_dwdb_final_kernel<T><<<grid_for(C), kThreads, 0, stream()>>>(ppw, ppb, splits, C, pdw, pdb);
    check_launch(op);
  }
  if (rows == 0) return;
  RowLaunch L = row_launch(rows, C);
  if (L.warp)
    norm_dx_kernel<T, true><<<L.grid, L.block, 0, stream()>>>(px, pw, pm, pr, pg, data_of<T>(dx), rows, C, rms);
  else
    norm_dx_kernel<T, false><<<L.grid, L.block, 0, stream()>>>(px, pw, pm, pr, pg, data_of<T>(dx), rows, C, rms);
  check_launch(op);
}

}  // namespace

void norm_forward(bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                  Tensor& mean, Tensor& rstd) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  int64_t C = x.ndim() == 0 ? 1 : x.shape().back();
  int64_t rows = C == 0 ? 0 : x.numel() / C;
  if (rows == 0) return;
  visit_device_floating(x.dtype(), op, [&]<typename T>() {
    forward_typed<T>(rms, x, weight, bias, eps, y, mean, rstd, rows, C, op);
  });
}

void norm_backward(bool rms, const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                   const Tensor& g, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
  int64_t C = x.shape().back();
  int64_t rows = C == 0 ? 0 : x.numel() / C;
  if (C == 0) return;
  visit_device_floating(x.dtype(), op, [&]<typename T>() {
    backward_typed<T>(rms, x, weight, mean, rstd, g, dx, dweight, dbias, rows, C, op);
  });
}

}  // namespace ember::cuda
