// CPU kernels for softmax and log-softmax (forward and backward) along one axis
// of a contiguous tensor viewed as [outer, n, inner], plus the vectorisable exp
// that the softmax, cross-entropy and attention kernels share.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "ember/core/tensor.h"

namespace ember::cpu {

// Maps float bits to an int32 with the same order as the floats (negative
// floats have their magnitude bits flipped); it is its own inverse.
constexpr int32_t float_order_key(int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); }

// exp(x) for float in plain arithmetic, so that loops calling it vectorise
// (std::exp is an opaque libm call per element unless built with -ffast-math).
// Cephes' expf: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r
// and 2^n assembled in the exponent bits; within 2 ulp of exp. Clamping and
// NaN handling use integer operations only: the vectoriser does not if-convert
// float comparisons under the default -ftrapping-math. exp(-inf) is exactly 0
// (softmax masks rely on it), results below ~1e-38 flush to 0, x above 88.38
// saturates at 2.4e38, NaN propagates.
inline float vexp(float x) {
  constexpr int32_t lo = float_order_key(std::bit_cast<int32_t>(-88.0f));
  constexpr int32_t hi = float_order_key(std::bit_cast<int32_t>(88.3762626647949f));
  const int32_t bx = std::bit_cast<int32_t>(x);
  const int32_t key = std::min(std::max(float_order_key(bx), lo), hi);
  const float xc = std::bit_cast<float>(float_order_key(key));
  // Round xc*log2(e) to the nearest integer with the 1.5*2^23 trick.
  const float magic = 12582912.0f;
  const float t = xc * 1.44269504088896341f + magic;
  const float n = t - magic;
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(magic);
  float r = xc - n * 0.693359375f;  // ln2 split in two so that n*ln2 is exact enough
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = std::bit_cast<int32_t>(p * std::bit_cast<float>((ni + 127) << 23));
  const int32_t nan_mask = -int32_t((bx & 0x7fffffff) > 0x7f800000);
  return std::bit_cast<float>((bx & nan_mask) | (bits & ~nan_mask));
}
// float64 is used for gradient checks, where accuracy matters more than speed.
inline double vexp(double x) { return std::exp(x); }

// max(a, b) through the integer order keys, again so that loops vectorise. A
// NaN with the sign bit clear wins, one with it set loses; callers that sum
// exponentials afterwards propagate NaN either way.
inline float vmax(float a, float b) {
  int32_t k = std::max(float_order_key(std::bit_cast<int32_t>(a)), float_order_key(std::bit_cast<int32_t>(b)));
  return std::bit_cast<float>(float_order_key(k));
}
inline double vmax(double a, double b) { return std::max(a, b); }

// The largest of x[0, n) in compute_t<T> (-inf when n == 0).
template <typename T>
compute_t<T> max_of(const T* x, int64_t n) {
  using A = compute_t<T>;
  if constexpr (std::is_same_v<A, double>) {
    A m = -INFINITY;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, A(x[i]));
    return m;
  } else {
    int32_t m = float_order_key(std::bit_cast<int32_t>(-INFINITY));
    for (int64_t i = 0; i < n; ++i) m = std::max(m, float_order_key(std::bit_cast<int32_t>(float(x[i]))));
    return std::bit_cast<float>(float_order_key(m));
  }
}

// y = softmax(x) (or log_softmax when `log`) along the middle axis of
// [outer, n, inner]; x and y are contiguous with the same dtype.
void softmax_forward(bool log, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& y);
// dx from the forward output y and the cotangent g (all contiguous, one layout):
//   softmax:     dx = y * (g - sum(g * y))
//   log_softmax: dx = g - exp(y) * sum(g)
void softmax_backward(bool log, const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner,
                      Tensor& dx);

}  // namespace ember::cpu
