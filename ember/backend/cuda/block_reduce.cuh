// What the CUDA reduction and row-wise kernels share (reductions, softmax,
// norms, cross-entropy, grad norm): the combine operations of sum, prod, max
// and min with the CPU kernels' NaN handling, warp and block all-reductions,
// and rows handed out to a warp or to a whole block.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "ember/backend/cuda/kernel_utils.cuh"

namespace ember::cuda {

template <typename A>
struct SumOp {
  static __device__ __forceinline__ A init() { return A(0); }
  static __device__ __forceinline__ A combine(A a, A b) { return a + b; }
};
template <typename A>
struct ProdOp {
  static __device__ __forceinline__ A init() { return A(1); }
  static __device__ __forceinline__ A combine(A a, A b) { return a * b; }
};
// max/min as in backend/cpu/reduce_kernels.cpp: a NaN on either side wins.
template <typename A>
struct MaxOp {
  static __device__ __forceinline__ A init() {
    if constexpr (std::numeric_limits<A>::has_infinity) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  }
  static __device__ __forceinline__ A combine(A a, A b) {
    if constexpr (std::is_integral_v<A>) return b > a ? b : a;
    else return (b != b || b > a) ? b : a;
  }
};
template <typename A>
struct MinOp {
  static __device__ __forceinline__ A init() {
    if constexpr (std::numeric_limits<A>::has_infinity) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
  static __device__ __forceinline__ A combine(A a, A b) {
    if constexpr (std::is_integral_v<A>) return b < a ? b : a;
    else return (b != b || b < a) ? b : a;
  }
};

// Every lane of the warp gets the combination of all 32 lanes' values (the
// butterfly pattern, so that every lane computes the same result).
template <typename A, typename Op>
__device__ __forceinline__ A warp_allreduce(A v) {
  for (int o = 16; o > 0; o >>= 1) v = Op::combine(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread of the block gets the combination of all threads' values. All
// threads must call it; blockDim.x is a multiple of 32 (blockDim.y == 1).
template <typename A, typename Op>
__device__ __forceinline__ A block_allreduce(A v) {
  __shared__ A partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = int(blockDim.x + 31) >> 5;
  v = warp_allreduce<A, Op>(v);
  __syncthreads();  // a previous call may still be reading `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : Op::init();
  return warp_allreduce<A, Op>(v);
}

template <bool kWarp, typename A, typename Op>
__device__ __forceinline__ A group_allreduce(A v) {
  if constexpr (kWarp) return warp_allreduce<A, Op>(v);
  else return block_allreduce<A, Op>(v);
}

// The rows a thread works on: with kWarp each warp of the block takes a row,
// otherwise the whole block does. Rows are [first, rows) in steps of `step`;
// within a row the thread takes elements lane, lane + width, ...
template <bool kWarp>
struct RowGroup {
  int64_t first, step;
  int lane, width;
  __device__ __forceinline__ RowGroup() {
    if constexpr (kWarp) {
      const int warps = int(blockDim.x) >> 5;
      first = int64_t(blockIdx.x) * warps + (threadIdx.x >> 5);
      step = int64_t(gridDim.x) * warps;
      lane = int(threadIdx.x) & 31;
      width = 32;
    } else {
      first = blockIdx.x;
      step = gridDim.x;
      lane = int(threadIdx.x);
      width = int(blockDim.x);
    }
  }
};

// How rows of n elements are spread: a warp per row for short rows (8 rows
// per block), a block of up to 1024 threads per row for long ones.
struct RowLaunch {
  bool warp;
  unsigned grid, block;
};
inline RowLaunch row_launch(int64_t rows, int64_t n) {
  constexpr int64_t kMaxGrid = int64_t(1) << 20;  // rows beyond it are taken in turn
  if (n <= 1024) {
    int64_t blocks = (rows + 7) / 8;
    return {true, unsigned(blocks < 1 ? 1 : (blocks < kMaxGrid ? blocks : kMaxGrid)), 256};
  }
  unsigned block = n >= 16384 ? 1024 : n >= 4096 ? 512 : 256;
  return {false, unsigned(rows < 1 ? 1 : (rows < kMaxGrid ? rows : kMaxGrid)), block};
}

template <typename C>
__device__ __forceinline__ bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return v != v;
  else return false;
}

}  // namespace ember::cuda
