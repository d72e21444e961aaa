// DeviceMath: the transcendental functions of backend/elementwise_math.h
// (its `M` parameter) from CUDA's device math library, for every kernel that
// runs the shared elementwise scalar math on a GPU.
#pragma once

namespace ember::cuda {

struct DeviceMath {
  template <typename C> static __device__ __forceinline__ C exp(C x) { return ::exp(x); }
  template <typename C> static __device__ __forceinline__ C tanh(C x) { return ::tanh(x); }
  template <typename C> static __device__ __forceinline__ C log(C x) { return ::log(x); }
  template <typename C> static __device__ __forceinline__ C sqrt(C x) { return ::sqrt(x); }
  template <typename C> static __device__ __forceinline__ C erf(C x) { return ::erf(x); }
  template <typename C> static __device__ __forceinline__ C sin(C x) { return ::sin(x); }
  template <typename C> static __device__ __forceinline__ C cos(C x) { return ::cos(x); }
  template <typename C> static __device__ __forceinline__ C pow(C a, C b) { return ::pow(a, b); }
};

}  // namespace ember::cuda
