// CPU elementwise kernels. Each op is a scalar functor; the loop helpers pick a
// contiguous inner loop (which GCC vectorises for AVX-512) whenever the
// innermost strides allow, and a strided one otherwise. 16-bit floats are
// computed in float and rounded once on store.
#include "ember/backend/cpu/elementwise_kernels.h"

#include <cmath>

#include "ember/backend/cpu/loops.h"

namespace ember::cpu {
namespace {

template <typename C>
inline C gelu_exact(C x) {
  return C(0.5) * x * (C(1) + std::erf(x * C(0.70710678118654752440)));
}
template <typename C>
inline C gelu_tanh_form(C x) {
  const C k = C(0.79788456080286535588);  // sqrt(2/pi)
  return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
}

template <typename C>
inline C apply_unary(UnaryOp op, C x) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::abs: return x < C(0) ? -x : x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return C(1) / std::sqrt(x);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return C(1) / (C(1) + std::exp(-x));
    case UnaryOp::relu: return x > C(0) ? x : C(0);
    case UnaryOp::gelu: return gelu_exact(x);
    case UnaryOp::gelu_tanh: return gelu_tanh_form(x);
    case UnaryOp::silu: return x / (C(1) + std::exp(-x));
    case UnaryOp::sin: return std::sin(x);
    case UnaryOp::cos: return std::cos(x);
    case UnaryOp::erf: return std::erf(x);
    case UnaryOp::sign: return C((x > C(0)) - (x < C(0)));
    case UnaryOp::square: return x * x;
    case UnaryOp::reciprocal: return C(1) / x;
    case UnaryOp::logical_not: return C(x == C(0));
  }
  return x;
}

// The op is a template parameter so each inner loop is specialised and vectorisable.
template <UnaryOp OP, typename T>
void unary_typed(const Tensor& in, Tensor& out) {
  using C = compute_t<T>;
  const T* src = static_cast<const T*>(in.raw_data());
  T* dst = static_cast<T*>(out.raw_data());
  for_each_strided<2>(out.shape(), {out.strides(), in.strides()},
                      [&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t n) {
                        T* o = dst + off[0];
                        const T* s = src + off[1];
                        if (st[0] == 1 && st[1] == 1) {
                          for (int64_t i = 0; i < n; ++i) o[i] = T(apply_unary<C>(OP, C(s[i])));
                        } else {
                          for (int64_t i = 0; i < n; ++i) o[i * st[0]] = T(apply_unary<C>(OP, C(s[i * st[1]])));
                        }
                      });
}

template <typename T>
void unary_dispatch(UnaryOp op, const Tensor& in, Tensor& out) {
  switch (op) {
#define EMBER_CASE(K) \
  case UnaryOp::K: return unary_typed<UnaryOp::K, T>(in, out);
    EMBER_CASE(neg) EMBER_CASE(abs) EMBER_CASE(exp) EMBER_CASE(log) EMBER_CASE(sqrt) EMBER_CASE(rsqrt)
    EMBER_CASE(tanh) EMBER_CASE(sigmoid) EMBER_CASE(relu) EMBER_CASE(gelu) EMBER_CASE(gelu_tanh)
    EMBER_CASE(silu) EMBER_CASE(sin) EMBER_CASE(cos) EMBER_CASE(erf) EMBER_CASE(sign) EMBER_CASE(square)
    EMBER_CASE(reciprocal) EMBER_CASE(logical_not)
#undef EMBER_CASE
  }
}

template <typename C>
inline C apply_binary(BinaryOp op, C a, C b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div:
      if constexpr (std::is_integral_v<C>) return b == 0 ? C(0) : C(a / b);  // no SIGFPE on bad input
      else return a / b;
    case BinaryOp::pow:
      if constexpr (std::is_integral_v<C>) return C(std::pow(double(a), double(b)));
      else return std::pow(a, b);
    case BinaryOp::maximum:
      if constexpr (!std::is_integral_v<C>) if (a != a || b != b) return a + b;  // NaN propagates
      return a > b ? a : b;
    case BinaryOp::minimum:
      if constexpr (!std::is_integral_v<C>) if (a != a || b != b) return a + b;
      return a < b ? a : b;
    default: return C(0);
  }
}

template <typename C>
inline bool apply_compare(BinaryOp op, C a, C b) {
  switch (op) {
    case BinaryOp::eq: return a == b;
    case BinaryOp::ne: return a != b;
    case BinaryOp::lt: return a < b;
    case BinaryOp::le: return a <= b;
    case BinaryOp::gt: return a > b;
    case BinaryOp::ge: return a >= b;
    case BinaryOp::logical_and: return a != C(0) && b != C(0);
    case BinaryOp::logical_or: return a != C(0) || b != C(0);
    default: return false;
  }
}

template <BinaryOp OP, typename T, typename O>
void binary_typed(const Tensor& a, const Tensor& b, Tensor& out) {
  using C = compute_t<T>;
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  O* po = static_cast<O*>(out.raw_data());
  Strides sa = broadcast_strides(a.shape(), a.strides(), out.shape());
  Strides sb = broadcast_strides(b.shape(), b.strides(), out.shape());
  auto f = [](C x, C y) -> O {
    if constexpr (is_comparison(OP)) return O(apply_compare<C>(OP, x, y));
    else return O(apply_binary<C>(OP, x, y));
  };
  for_each_strided<3>(out.shape(), {out.strides(), sa, sb},
                      [&](std::array<int64_t, 3> off, std::array<int64_t, 3> st, int64_t n) {
                        O* o = po + off[0];
                        const T* x = pa + off[1];
                        const T* y = pb + off[2];
                        if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                          for (int64_t i = 0; i < n; ++i) o[i] = f(C(x[i]), C(y[i]));
                        } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
                          C yv = C(y[0]);
                          for (int64_t i = 0; i < n; ++i) o[i] = f(C(x[i]), yv);
                        } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
                          C xv = C(x[0]);
                          for (int64_t i = 0; i < n; ++i) o[i] = f(xv, C(y[i]));
                        } else {
                          for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(C(x[i * st[1]]), C(y[i * st[2]]));
                        }
                      });
}

template <typename T>
void binary_dispatch(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  switch (op) {
#define EMBER_ARITH(K) \
  case BinaryOp::K: return binary_typed<BinaryOp::K, T, T>(a, b, out);
#define EMBER_CMP(K) \
  case BinaryOp::K: return binary_typed<BinaryOp::K, T, bool>(a, b, out);
    EMBER_ARITH(add) EMBER_ARITH(sub) EMBER_ARITH(mul) EMBER_ARITH(div) EMBER_ARITH(pow) EMBER_ARITH(maximum)
    EMBER_ARITH(minimum) EMBER_CMP(eq) EMBER_CMP(ne) EMBER_CMP(lt) EMBER_CMP(le) EMBER_CMP(gt) EMBER_CMP(ge)
    EMBER_CMP(logical_and) EMBER_CMP(logical_or)
#undef EMBER_ARITH
#undef EMBER_CMP
  }
}

}  // namespace

void unary(UnaryOp op, const Tensor& in, Tensor& out) {
  visit_dtype(in.dtype(), unary_op_name(op), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(unary_op_name(op), "is not defined for bool tensors");
    } else {
      unary_dispatch<T>(op, in, out);
    }
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  visit_dtype(a.dtype(), binary_op_name(op), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      // bool arithmetic is done on uint8 views of the same bytes (0/1).
      if (!is_comparison(op)) fail(binary_op_name(op), "is not defined for bool tensors");
      binary_dispatch<uint8_t>(op, a, b, out);
    } else {
      binary_dispatch<T>(op, a, b, out);
    }
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const bool* pc = static_cast<const bool*>(cond.raw_data());
  Strides sc = broadcast_strides(cond.shape(), cond.strides(), out.shape());
  Strides sa = broadcast_strides(a.shape(), a.strides(), out.shape());
  Strides sb = broadcast_strides(b.shape(), b.strides(), out.shape());
  visit_dtype(out.dtype(), "where", [&]<typename T>() {
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    for_each_strided<4>(out.shape(), {out.strides(), sc, sa, sb},
                        [&](std::array<int64_t, 4> off, std::array<int64_t, 4> st, int64_t n) {
                          for (int64_t i = 0; i < n; ++i)
                            po[off[0] + i * st[0]] =
                                pc[off[1] + i * st[1]] ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
                        });
  });
}

void clamp(const Tensor& in, double lo, double hi, Tensor& out) {
  visit_dtype(in.dtype(), "clamp", [&]<typename T>() {
    using C = compute_t<T>;
    const T* src = static_cast<const T*>(in.raw_data());
    T* dst = static_cast<T*>(out.raw_data());
    C l = C(lo), h = C(hi);
    for_each_strided<2>(out.shape(), {out.strides(), in.strides()},
                        [&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t n) {
                          for (int64_t i = 0; i < n; ++i) {
                            C v = C(src[off[1] + i * st[1]]);
                            if constexpr (!std::is_integral_v<C>) {
                              if (v != v) {
                                dst[off[0] + i * st[0]] = T(v);
                                continue;
                              }
                            }
                            dst[off[0] + i * st[0]] = T(v < l ? l : (v > h ? h : v));
                          }
                        });
  });
}

void copy_cast(const Tensor& src, Tensor& out) {
  Strides ss = broadcast_strides(src.shape(), src.strides(), out.shape());
  visit_dtype(src.dtype(), "copy", [&]<typename S>() {
    visit_dtype(out.dtype(), "copy", [&]<typename D>() {
      const S* ps = static_cast<const S*>(src.raw_data());
      D* pd = static_cast<D*>(out.raw_data());
      auto convert = [](S v) -> D {
        if constexpr (std::is_same_v<S, D>) return v;
        else if constexpr (std::is_same_v<D, bool>) return compute_t<S>(v) != compute_t<S>(0);
        else return D(compute_t<D>(compute_t<S>(v)));
      };
      for_each_strided<2>(out.shape(), {out.strides(), ss},
                          [&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t n) {
                            D* o = pd + off[0];
                            const S* s = ps + off[1];
                            if (st[0] == 1 && st[1] == 1) {
                              for (int64_t i = 0; i < n; ++i) o[i] = convert(s[i]);
                            } else {
                              for (int64_t i = 0; i < n; ++i) o[i * st[0]] = convert(s[i * st[1]]);
                            }
                          });
    });
  });
}

void fill(Tensor& out, double value) {
  visit_dtype(out.dtype(), "fill", [&]<typename T>() {
    T v;
    if constexpr (std::is_same_v<T, bool>) v = value != 0;
    else v = T(compute_t<T>(value));
    T* p = static_cast<T*>(out.raw_data());
    parallel_for(out.numel(), kParallelGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = v;
    });
  });
}

}  // namespace ember::cpu
