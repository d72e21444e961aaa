// The scalar math of the elementwise primitives, shared by the CPU and CUDA
// kernels so that both compute one function: apply_unary, apply_binary and the
// fused activation derivatives. The op is a template parameter and each body is
// an `if constexpr` branch, so an instantiation holds only its own op (small
// enough to inline into a loop, which then vectorises on the CPU).
//
// `M` supplies the transcendental functions: the CPU passes vectorisable float
// exp/tanh (backend/cpu/elementwise_kernels.cpp), CUDA its device math library.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>

#include "ember/core/op_kinds.h"

#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__ __forceinline__
#else
#define EMBER_HD [[gnu::always_inline]] inline
#endif

// The ops, as X-macro lists for the backends' dispatch switches (each backend
// instantiates one kernel per op): X(name) for every UnaryOp but logical_not
// (which writes bool), the arithmetic BinaryOps, and the comparisons.
#define EMBER_UNARY_MATH_OPS(X)                                                                        \
  X(neg) X(abs) X(exp) X(log) X(sqrt) X(rsqrt) X(tanh) X(sigmoid) X(relu) X(gelu) X(gelu_tanh) X(silu) \
  X(sin) X(cos) X(erf) X(sign) X(square) X(reciprocal)
#define EMBER_BINARY_ARITH_OPS(X) X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum)
#define EMBER_BINARY_COMPARE_OPS(X) X(eq) X(ne) X(lt) X(le) X(gt) X(ge) X(logical_and) X(logical_or)

namespace ember::elementwise {

template <typename M, typename C>
EMBER_HD C gelu_exact(C x) {
  return C(0.5) * x * (C(1) + M::erf(x * C(0.70710678118654752440)));
}
template <typename M, typename C>
EMBER_HD C gelu_tanh_form(C x) {
  const C k = C(0.79788456080286535588);  // sqrt(2/pi)
  return C(0.5) * x * (C(1) + M::tanh(k * (x + C(0.044715) * x * x * x)));
}

template <UnaryOp OP, typename M, typename C>
EMBER_HD C apply_unary(C x) {
  if constexpr (OP == UnaryOp::neg) return -x;
  else if constexpr (OP == UnaryOp::abs) {
    if constexpr (std::is_unsigned_v<C>) return x;
    else return x < C(0) ? C(-x) : C(x == C(0) ? C(0) : x);  // abs(-0.0) is +0.0
  }
  else if constexpr (OP == UnaryOp::exp) return M::exp(x);
  else if constexpr (OP == UnaryOp::log) return M::log(x);
  else if constexpr (OP == UnaryOp::sqrt) return M::sqrt(x);
  else if constexpr (OP == UnaryOp::rsqrt) return C(1) / M::sqrt(x);
  else if constexpr (OP == UnaryOp::tanh) return M::tanh(x);
  else if constexpr (OP == UnaryOp::sigmoid) return C(1) / (C(1) + M::exp(-x));
  else if constexpr (OP == UnaryOp::relu) return x < C(0) ? C(0) : x;  // NaN propagates, as in PyTorch
  else if constexpr (OP == UnaryOp::gelu) return gelu_exact<M>(x);
  else if constexpr (OP == UnaryOp::gelu_tanh) return gelu_tanh_form<M>(x);
  else if constexpr (OP == UnaryOp::silu) return x / (C(1) + M::exp(-x));
  else if constexpr (OP == UnaryOp::sin) return M::sin(x);
  else if constexpr (OP == UnaryOp::cos) return M::cos(x);
  else if constexpr (OP == UnaryOp::erf) return M::erf(x);
  else if constexpr (OP == UnaryOp::sign) return C((x > C(0)) - (x < C(0)));
  else if constexpr (OP == UnaryOp::square) return x * x;
  else if constexpr (OP == UnaryOp::reciprocal) return C(1) / x;
  else return C(x == C(0));  // logical_not
}

template <BinaryOp OP, typename M, typename C>
EMBER_HD C apply_binary(C a, C b) {
  if constexpr (OP == BinaryOp::add) return a + b;
  else if constexpr (OP == BinaryOp::sub) return a - b;
  else if constexpr (OP == BinaryOp::mul) return a * b;
  else if constexpr (OP == BinaryOp::div) {
    if constexpr (std::is_integral_v<C>) return b == 0 ? C(0) : C(a / b);  // no SIGFPE on bad input
    else return a / b;
  } else if constexpr (OP == BinaryOp::pow) {
    if constexpr (std::is_integral_v<C>) return C(M::pow(double(a), double(b)));
    else return M::pow(a, b);
  } else if constexpr (OP == BinaryOp::maximum) {
    if constexpr (std::is_integral_v<C>) return a > b ? a : b;
    else return a != a || b != b ? a + b : (a > b ? a : b);  // NaN propagates
  } else if constexpr (OP == BinaryOp::minimum) {
    if constexpr (std::is_integral_v<C>) return a < b ? a : b;
    else return a != a || b != b ? a + b : (a < b ? a : b);
  } else if constexpr (OP == BinaryOp::eq) return a == b;
  else if constexpr (OP == BinaryOp::ne) return a != b;
  else if constexpr (OP == BinaryOp::lt) return a < b;
  else if constexpr (OP == BinaryOp::le) return a <= b;
  else if constexpr (OP == BinaryOp::gt) return a > b;
  else if constexpr (OP == BinaryOp::ge) return a >= b;
  else if constexpr (OP == BinaryOp::logical_and) return a != C(0) && b != C(0);
  else return a != C(0) || b != C(0);  // logical_or
}

// d/dx of the activations whose backward is fused (activation_grad): one pass
// over x and the incoming gradient instead of a dozen elementwise ops.
template <UnaryOp OP, typename M, typename C>
EMBER_HD C activation_derivative(C x) {
  if constexpr (OP == UnaryOp::gelu_tanh) {
    const C k = C(0.79788456080286535588), a = C(0.044715);
    C x2 = x * x;
    C t = M::tanh(k * (x + a * x2 * x));
    return C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * k * (C(1) + C(3) * a * x2);
  } else if constexpr (OP == UnaryOp::gelu) {
    C cdf = C(0.5) * (C(1) + M::erf(x * C(0.70710678118654752440)));
    return cdf + x * C(0.39894228040143267794) * M::exp(C(-0.5) * x * x);
  } else {  // silu
    C sg = C(1) / (C(1) + M::exp(-x));
    return sg * (C(1) + x * (C(1) - sg));
  }
}

// A clamp bound in the compute type (host side). For integers an infinite or
// out-of-range bound would be undefined behaviour to convert, so it saturates,
// and a fractional bound rounds inwards (x >= 0.5 means x >= 1 for an integer).
template <typename C>
C clamp_bound(double v, bool lower) {
  if constexpr (std::is_integral_v<C>) {
    v = lower ? std::ceil(v) : std::floor(v);
    if (v <= double(std::numeric_limits<C>::lowest())) return std::numeric_limits<C>::lowest();
    if (v >= double(std::numeric_limits<C>::max())) return std::numeric_limits<C>::max();
    return C(v);
  } else {
    return C(v);
  }
}

}  // namespace ember::elementwise
