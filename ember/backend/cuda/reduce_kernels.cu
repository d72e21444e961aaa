// CUDA reductions over a contiguous [outer, reduce, inner] input.
//
// inner == 1 (the reduced axes are innermost): a warp per row for short rows,
// a block per row for long ones, each thread striding through the row and the
// group combining with warp shuffles (and shared memory across warps).
// inner > 1: a [32 columns x 8 rows] block walks down 32 adjacent columns, so
// loads are coalesced along `inner`, and folds its 8 row-partials in shared
// memory. When there are too few outputs to fill the GPU, the reduced extent is
// cut into chunks reduced by separate blocks into a scratch buffer of
// accumulators, which a second pass of the same kernel combines.
// Accumulation as on the CPU: float for float32 and the 16-bit floats, double
// for float64, int64 for the integers (stored back with the CPU's conversion).
#include "ember/backend/cuda/reduce_kernels.h"

#include <algorithm>

#include "ember/backend/cuda/block_reduce.cuh"

namespace ember::cuda {
namespace {

constexpr int kColRows = 8;          // rows of a column block
constexpr int64_t kTargetBlocks = 1024;  // enough blocks to fill an H200 several times over

template <typename A>
DType dtype_of() {
  if constexpr (std::is_same_v<A, float>) return DType::f32;
  else if constexpr (std::is_same_v<A, double>) return DType::f64;
  else return DType::i64;
}

// Work item w of outer * splits: chunk (w % splits) of row (w / splits), written to out[w].
template <typename T, typename A, typename Op, typename O, bool kWarp>
__global__ void reduce_rows_kernel(const T* in, int64_t outer, int64_t red, int64_t splits, int64_t chunk, O* out) {
  RowGroup<kWarp> g;
  const int64_t items = outer * splits;
  for (int64_t w = g.first; w < items; w += g.step) {
    const int64_t row = w / splits, s = w % splits;
    const int64_t begin = s * chunk, end = begin + chunk < red ? begin + chunk : red;
    const T* p = in + row * red;
    A acc = Op::init();
    for (int64_t r = begin + g.lane; r < end; r += g.width) acc = Op::combine(acc, A(load(p + r)));
    acc = group_allreduce<kWarp, A, Op>(acc);
    if (g.lane == 0) store(out + w, acc);
  }
}

template <typename T, typename A, typename Op, typename O>
void rows_pass(const T* in, int64_t outer, int64_t red, int64_t splits, O* out, const char* op) {
  const int64_t chunk = (red + splits - 1) / splits;
  RowLaunch L = row_launch(outer * splits, chunk);
  if (L.warp) reduce_rows_kernel<T, A, Op, O, true><<<L.grid, L.block, 0, stream()>>>(in, outer, red, splits, chunk, out);
  else reduce_rows_kernel<T, A, Op, O, false><<<L.grid, L.block, 0, stream()>>>(in, outer, red, splits, chunk, out);
  check_launch(op);
}

// Block (x: column, y: row) of a [32, kColRows] tile; blockIdx.z is the chunk of
// the reduced extent; out is [outer, splits, inner].
template <typename T, typename A, typename Op, typename O>
__global__ void reduce_cols_kernel(const T* in, int64_t outer, int64_t red, int64_t inner, int64_t splits,
                                   int64_t chunk, O* out) {
  __shared__ A part[kColRows][33];
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const int64_t i = int64_t(blockIdx.x) * 32 + tx;
  const int64_t s = blockIdx.z;
  const int64_t begin = s * chunk, end = begin + chunk < red ? begin + chunk : red;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    A acc = Op::init();
    if (i < inner) {
      const T* p = in + o * red * inner + i;
      for (int64_t r = begin + ty; r < end; r += kColRows) acc = Op::combine(acc, A(load(p + r * inner)));
    }
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && i < inner) {
      A v = part[0][tx];
      for (int k = 1; k < kColRows; ++k) v = Op::combine(v, part[k][tx]);
      store(out + (o * splits + s) * inner + i, v);
    }
    __syncthreads();
  }
}

template <typename T, typename A, typename Op, typename O>
void cols_pass(const T* in, int64_t outer, int64_t red, int64_t inner, int64_t splits, O* out, const char* op) {
  const int64_t chunk = (red + splits - 1) / splits;
  dim3 grid(unsigned((inner + 31) / 32), unsigned(outer < 65535 ? outer : 65535), unsigned(splits));
  reduce_cols_kernel<T, A, Op, O><<<grid, dim3(32, kColRows), 0, stream()>>>(in, outer, red, inner, splits, chunk, out);
  check_launch(op);
}

template <typename T, typename A, typename Op>
void reduce_typed(const Tensor& input, int64_t outer, int64_t red, int64_t inner, Tensor& output, const char* op) {
  const T* in = data_of<T>(input);
  T* out = data_of<T>(output);
  if (inner == 1) {
    // Few long rows: cut each row into chunks of >= 4096 elements.
    int64_t splits = 1;
    if (outer < kTargetBlocks / 2 && red > 16384)
      splits = std::min<int64_t>((red + 4095) / 4096, (kTargetBlocks + outer - 1) / outer);
    if (splits <= 1) return rows_pass<T, A, Op, T>(in, outer, red, 1, out, op);
    Tensor scratch = Tensor::empty({outer * splits}, dtype_of<A>(), input.device());
    rows_pass<T, A, Op, A>(in, outer, red, splits, data_of<A>(scratch), op);
    return rows_pass<A, A, Op, T>(data_of<A>(scratch), outer, splits, 1, out, op);
  }
  const int64_t tiles = (inner + 31) / 32 * std::min<int64_t>(outer, 65535);
  int64_t splits = 1;
  if (tiles < kTargetBlocks / 4 && red > 256)
    splits = std::min<int64_t>((red + 127) / 128, (kTargetBlocks + tiles - 1) / tiles);
  if (splits <= 1) return cols_pass<T, A, Op, T>(in, outer, red, inner, 1, out, op);
  Tensor scratch = Tensor::empty({outer * splits * inner}, dtype_of<A>(), input.device());
  cols_pass<T, A, Op, A>(in, outer, red, inner, splits, data_of<A>(scratch), op);
  cols_pass<A, A, Op, T>(data_of<A>(scratch), outer, splits, inner, 1, out, op);
}

// ---- argmax / argmin ---------------------------------------------------------

constexpr int64_t kNoIndex = std::numeric_limits<int64_t>::max();

// Folds candidate (ov, oi) into (v, idx): a NaN wins (the first one), then the
// larger (smaller) value, then the lower index; the CPU's first-hit scan.
template <bool kMax, typename C>
__device__ __forceinline__ void arg_combine(C& v, int64_t& idx, C ov, int64_t oi) {
  if (oi == kNoIndex) return;
  bool take;
  if (idx == kNoIndex) {
    take = true;
  } else {
    const bool vn = is_nan(v), on = is_nan(ov);
    if (vn || on) take = on && (!vn || oi < idx);
    else take = (kMax ? ov > v : ov < v) || (ov == v && oi < idx);
  }
  if (take) {
    v = ov;
    idx = oi;
  }
}

template <typename T, typename C, bool kMax, bool kWarp>
__global__ void arg_rows_kernel(const T* in, int64_t outer, int64_t red, int64_t* out) {
  RowGroup<kWarp> g;
  for (int64_t row = g.first; row < outer; row += g.step) {
    const T* p = in + row * red;
    C v = C(0);
    int64_t idx = kNoIndex;
    for (int64_t r = g.lane; r < red; r += g.width) arg_combine<kMax, C>(v, idx, C(load(p + r)), r);
    for (int o = 16; o > 0; o >>= 1) {
      C ov = __shfl_xor_sync(0xffffffffu, v, o);
      int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
      arg_combine<kMax, C>(v, idx, ov, oi);
    }
    if constexpr (!kWarp) {
      __shared__ C sv[32];
      __shared__ int64_t si[32];
      const int lane = g.lane & 31, warp = g.lane >> 5, warps = (g.width + 31) >> 5;
      __syncthreads();
      if (lane == 0) {
        sv[warp] = v;
        si[warp] = idx;
      }
      __syncthreads();
      if (warp == 0) {
        v = lane < warps ? sv[lane] : C(0);
        idx = lane < warps ? si[lane] : kNoIndex;
        for (int o = 16; o > 0; o >>= 1) {
          C ov = __shfl_xor_sync(0xffffffffu, v, o);
          int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
          arg_combine<kMax, C>(v, idx, ov, oi);
        }
      }
    }
    if (g.lane == 0) out[row] = idx;
  }
}

// inner > 1: a thread per output scans its column (adjacent threads, adjacent columns).
template <typename T, typename C, bool kMax>
__global__ void arg_cols_kernel(const T* in, int64_t outer, int64_t red, int64_t inner, int64_t* out) {
  const int64_t n = outer * inner;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += int64_t(blockDim.x) * gridDim.x) {
    const int64_t o = k / inner, i = k % inner;
    const T* p = in + o * red * inner + i;
    C v = C(0);
    int64_t idx = kNoIndex;
    for (int64_t r = 0; r < red; ++r) {
      arg_combine<kMax, C>(v, idx, C(load(p + r * inner)), r);
      if (is_nan(v)) break;
    }
    out[k] = idx;
  }
}

template <typename T, bool kMax>
void arg_typed(const Tensor& input, int64_t outer, int64_t red, int64_t inner, Tensor& output, const char* op) {
  // Integers compare as int64 (warp shuffles take no 8-bit values).
  using C = std::conditional_t<std::is_integral_v<acc_t<T>>, int64_t, acc_t<T>>;
  const T* in = data_of<T>(input);
  int64_t* out = data_of<int64_t>(output);
  if (inner == 1) {
    RowLaunch L = row_launch(outer, red);
    if (L.warp) arg_rows_kernel<T, C, kMax, true><<<L.grid, L.block, 0, stream()>>>(in, outer, red, out);
    else arg_rows_kernel<T, C, kMax, false><<<L.grid, L.block, 0, stream()>>>(in, outer, red, out);
  } else {
    arg_cols_kernel<T, C, kMax><<<grid_for(outer * inner), kThreads, 0, stream()>>>(in, outer, red, inner, out);
  }
  check_launch(op);
}

}  // namespace

void reduce(ReduceOp op, const Tensor& in, int64_t outer, int64_t red, int64_t inner, Tensor& out) {
  const char* name = reduce_op_name(op);
  if (outer * inner == 0) return;
  visit_device_dtype(in.dtype(), name, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(name, "is not defined for bool tensors; cast first");
    } else {
      using A = std::conditional_t<std::is_integral_v<T>, int64_t, acc_t<T>>;
      switch (op) {
        case ReduceOp::sum: return reduce_typed<T, A, SumOp<A>>(in, outer, red, inner, out, name);
        case ReduceOp::prod: return reduce_typed<T, A, ProdOp<A>>(in, outer, red, inner, out, name);
        case ReduceOp::max: return reduce_typed<T, A, MaxOp<A>>(in, outer, red, inner, out, name);
        case ReduceOp::min: return reduce_typed<T, A, MinOp<A>>(in, outer, red, inner, out, name);
      }
    }
  });
}

void arg_reduce(bool is_max, const Tensor& in, int64_t outer, int64_t red, int64_t inner, Tensor& out) {
  const char* name = is_max ? "argmax" : "argmin";
  if (outer * inner == 0) return;
  visit_device_dtype(in.dtype(), name, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(name, "is not defined for bool tensors");
    } else {
      if (is_max) arg_typed<T, true>(in, outer, red, inner, out, name);
      else arg_typed<T, false>(in, outer, red, inner, out, name);
    }
  });
}

}  // namespace ember::cuda
