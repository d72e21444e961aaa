// What every CUDA kernel file uses: the device type of each DType and its
// arithmetic type, loads and stores that convert, strided indexing with
// broadcasting (the CUDA counterpart of backend/cpu/loops.h) and a grid-stride
// launcher for __device__ lambdas (nvcc --extended-lambda).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <array>
#include <cstdint>
#include <type_traits>

#include "ember/backend/cuda/cuda_context.h"
#include "ember/core/dtype.h"
#include "ember/core/tensor.h"

namespace ember::cuda {

// ---- element types -------------------------------------------------------

// Arithmetic happens in float for the 16-bit floats, in the type itself otherwise.
template <typename T> struct acc_type { using type = T; };
template <> struct acc_type<__nv_bfloat16> { using type = float; };
template <> struct acc_type<__half> { using type = float; };
template <typename T> using acc_t = typename acc_type<T>::type;

template <typename T>
__device__ __forceinline__ acc_t<T> load(const T* p) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(*p);
  else if constexpr (std::is_same_v<T, __half>) return __half2float(*p);
  else return *p;
}

template <typename T, typename C>
__device__ __forceinline__ void store(T* p, C v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) *p = __float2bfloat16(float(v));
  else if constexpr (std::is_same_v<T, __half>) *p = __float2half(float(v));
  else if constexpr (std::is_same_v<T, bool>) *p = v != C(0);
  else *p = T(v);
}

// Calls fn.template operator()<T>() with T the device type of dt (as visit_dtype).
template <typename Fn>
decltype(auto) visit_device_dtype(DType dt, const char* where, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    case DType::bf16: return fn.template operator()<__nv_bfloat16>();
    case DType::f16: return fn.template operator()<__half>();
    case DType::i32: return fn.template operator()<int32_t>();
    case DType::i64: return fn.template operator()<int64_t>();
    case DType::u8: return fn.template operator()<uint8_t>();
    case DType::b8: return fn.template operator()<bool>();
  }
  fail(where, "unknown dtype ", int(dt));
}

template <typename Fn>
decltype(auto) visit_device_floating(DType dt, const char* where, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    case DType::bf16: return fn.template operator()<__nv_bfloat16>();
    case DType::f16: return fn.template operator()<__half>();
    default: fail(where, "expects a floating-point tensor, got ", dtype_name(dt));
  }
}

template <typename T>
T* data_of(Tensor& t) { return static_cast<T*>(t.raw_data()); }
template <typename T>
const T* data_of(const Tensor& t) { return static_cast<const T*>(t.raw_data()); }

// ---- strided indexing ------------------------------------------------------

constexpr int kMaxDims = 8;

// Maps the linear index of an element of `shape` (row-major) to the element
// offsets of N operands, each with its own strides (0 along broadcast dims).
// Passed to kernels by value.
template <int N>
struct Indexer {
  int ndim = 0;
  bool linear = false;  // every operand contiguous in the shape's order: offset == index
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  __device__ __forceinline__ void offsets(int64_t index, int64_t (&off)[N]) const {
    if (linear) {
      for (int k = 0; k < N; ++k) off[k] = index;
      return;
    }
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t i = index % sizes[d];
      index /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

// Builds the indexer of `shape` for operands given as (shape, strides) pairs,
// broadcasting each to `shape`, and merges dimensions that are contiguous for
// every operand (so a [B, T, C] + [C] add indexes two dimensions, not three).
template <int N>
Indexer<N> make_indexer(const Shape& shape, const std::array<const Tensor*, N>& operands, const char* op) {
  Indexer<N> ix;
  std::array<Strides, N> st;
  for (int k = 0; k < N; ++k) st[k] = broadcast_strides(operands[k]->shape(), operands[k]->strides(), shape);
  // Drop size-1 dimensions, then merge neighbours.
  std::vector<int64_t> sizes;
  std::array<std::vector<int64_t>, N> strides;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !sizes.empty();
    for (int k = 0; k < N && merge; ++k) merge = strides[k].back() == st[k][d] * shape[d];
    if (merge) {
      sizes.back() *= shape[d];
      for (int k = 0; k < N; ++k) strides[k].back() = st[k][d];
    } else {
      sizes.push_back(shape[d]);
      for (int k = 0; k < N; ++k) strides[k].push_back(st[k][d]);
    }
  }
  if (int(sizes.size()) > kMaxDims)
    fail(op, "CUDA kernels index at most ", kMaxDims, " non-mergeable dimensions, got ", sizes.size());
  ix.ndim = int(sizes.size());
  ix.linear = true;
  for (int d = 0; d < ix.ndim; ++d) {
    ix.sizes[d] = sizes[d];
    for (int k = 0; k < N; ++k) {
      ix.strides[k][d] = strides[k][d];
      // Contiguous after merging: one dimension of stride 1 (or nothing at all).
      ix.linear = ix.linear && ix.ndim == 1 && strides[k][d] == 1;
    }
  }
  if (ix.ndim == 0) ix.linear = true;
  return ix;
}

// ---- launching -------------------------------------------------------------

constexpr int kThreads = 256;

template <typename F>
__global__ void for_each_index_kernel(int64_t n, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    f(i);
}

inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

// Runs f(i) for i in [0, n) on stream(); f is a __device__ lambda.
template <typename F>
void for_each_index(int64_t n, const char* op, F f) {
  if (n <= 0) return;
  for_each_index_kernel<<<grid_for(n), kThreads, 0, stream()>>>(n, f);
  check_launch(op);
}

}  // namespace ember::cuda
