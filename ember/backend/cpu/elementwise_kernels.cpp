// CPU elementwise kernels. Each op is a scalar functor; the loop helpers pick a
// contiguous inner loop (which GCC vectorises for AVX-512) whenever the
// innermost strides allow, and a strided one otherwise. 16-bit floats are
// computed in float and rounded once on store.
//
// Floating-point operations never trap in ember (no FP exceptions are
// enabled), so tell GCC: under the default -ftrapping-math it refuses to turn
// `cond ? f(x) : y` into a vector select, which left exp, tanh, sigmoid, silu,
// gelu_tanh, clamp and maximum as scalar loops. Results are unchanged.
#pragma GCC optimize("no-trapping-math")

#include "ember/backend/cpu/elementwise_kernels.h"

#include <cmath>
#include <limits>

#include "ember/backend/cpu/loops.h"
#include "ember/backend/elementwise_math.h"

namespace ember::cpu {
namespace {

// Force-inlined: this file instantiates every op for every dtype, and past
// GCC's unit-growth limit it stops inlining, which turns the vector loops
// back into scalar calls.
#define EMBER_INLINE [[gnu::always_inline]] inline
#define EMBER_LAMBDA_INLINE __attribute__((always_inline))

// Float exp and tanh that GCC can vectorise (libm calls stay scalar, which made
// exp, sigmoid, silu, tanh and gelu_tanh compute-bound at a few hundred MB/s).
// Cephes-style: exp(x) = 2^n * exp(r) with |r| <= ln2/2 and a degree-6
// polynomial; under 2 ulp, with IEEE results at the edges (overflow to inf,
// gradual underflow to 0, NaN in gives NaN out). Every branch is a select.
EMBER_INLINE float exp_f32(float x) {
  constexpr float kMax = 88.72283935546875f;  // above: overflow to inf
  constexpr float kMin = -103.97208404541016f;  // below: underflow to 0
  float xc = x < kMin ? kMin : (x > kMax ? kMax : x);  // NaN stays NaN and poisons y below
  // Round to nearest by adding and removing 1.5 * 2^23 (std::floor and
  // x != x would keep GCC from vectorising the loop).
  constexpr float kRound = 12582912.0f;
  float n = (xc * 1.44269504088896341f + kRound) - kRound;
  float r = xc - n * 0.693359375f;  // ln 2 in two parts, so n * ln2 is exact enough
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  // 2^n as two factors so that n down to -150 (subnormal results) stays exact.
  int32_t ni = int32_t(n);
  int32_t n1 = ni >> 1, n2 = ni - n1;
  y = y * bits_float(uint32_t(n1 + 127) << 23) * bits_float(uint32_t(n2 + 127) << 23);
  y = x > kMax ? std::numeric_limits<float>::infinity() : y;
  return x < kMin ? 0.0f : y;
}

EMBER_INLINE float tanh_f32(float x) {
  // Small |x|: an odd polynomial (1 - 2/(e+1) would cancel); else via exp.
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = x + x * z * p;
  float a = x < 0.0f ? -x : x;
  float big = 1.0f - 2.0f / (exp_f32(2.0f * a) + 1.0f);
  big = x < 0.0f ? -big : big;
  return a < 0.625f ? small : big;
}

template <typename C>
EMBER_INLINE C exp_c(C x) {
  if constexpr (std::is_same_v<C, float>) return exp_f32(x);
  else return std::exp(x);
}
template <typename C>
EMBER_INLINE C tanh_c(C x) {
  if constexpr (std::is_same_v<C, float>) return tanh_f32(x);
  else return std::tanh(x);
}

// The transcendental functions the shared scalar math (backend/elementwise_math.h)
// calls: vectorisable exp and tanh for float, libm otherwise.
struct CpuMath {
  template <typename C> EMBER_INLINE static C exp(C x) { return exp_c(x); }
  template <typename C> EMBER_INLINE static C tanh(C x) { return tanh_c(x); }
  template <typename C> EMBER_INLINE static C log(C x) { return std::log(x); }
  template <typename C> EMBER_INLINE static C sqrt(C x) { return std::sqrt(x); }
  template <typename C> EMBER_INLINE static C erf(C x) { return std::erf(x); }
  template <typename C> EMBER_INLINE static C sin(C x) { return std::sin(x); }
  template <typename C> EMBER_INLINE static C cos(C x) { return std::cos(x); }
  template <typename C> EMBER_INLINE static C pow(C a, C b) { return std::pow(a, b); }
};

template <UnaryOp OP, typename C>
EMBER_INLINE C apply_unary(C x) {
  return elementwise::apply_unary<OP, CpuMath>(x);
}
template <BinaryOp OP, typename C>
EMBER_INLINE C apply_binary(C a, C b) {
  return elementwise::apply_binary<OP, CpuMath>(a, b);
}
template <UnaryOp OP, typename C>
EMBER_INLINE C activation_derivative(C x) {
  return elementwise::activation_derivative<OP, CpuMath>(x);
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
                          for (int64_t i = 0; i < n; ++i) o[i] = T(apply_unary<OP, C>(C(s[i])));
                        } else {
                          for (int64_t i = 0; i < n; ++i) o[i * st[0]] = T(apply_unary<OP, C>(C(s[i * st[1]])));
                        }
                      });
}

template <typename T>
void unary_dispatch(UnaryOp op, const Tensor& in, Tensor& out) {
  switch (op) {
#define EMBER_CASE(K) \
  case UnaryOp::K: return unary_typed<UnaryOp::K, T>(in, out);
    EMBER_UNARY_MATH_OPS(EMBER_CASE) EMBER_CASE(logical_not)
#undef EMBER_CASE
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
  auto f = [](C x, C y) EMBER_LAMBDA_INLINE -> O { return O(apply_binary<OP, C>(x, y)); };
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
    EMBER_BINARY_ARITH_OPS(EMBER_ARITH) EMBER_BINARY_COMPARE_OPS(EMBER_CMP)
#undef EMBER_ARITH
#undef EMBER_CMP
  }
}

template <UnaryOp OP, typename T>
void activation_grad_typed(const Tensor& x, const Tensor& g, Tensor& out) {
  using C = compute_t<T>;
  const T* px = static_cast<const T*>(x.raw_data());
  const T* pg = static_cast<const T*>(g.raw_data());
  T* po = static_cast<T*>(out.raw_data());
  for_each_strided<3>(out.shape(), {out.strides(), x.strides(), g.strides()},
                      [&](std::array<int64_t, 3> off, std::array<int64_t, 3> st, int64_t n) {
                        T* o = po + off[0];
                        const T* xs = px + off[1];
                        const T* gs = pg + off[2];
                        if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                          for (int64_t i = 0; i < n; ++i)
                            o[i] = T(C(gs[i]) * activation_derivative<OP, C>(C(xs[i])));
                        } else {
                          for (int64_t i = 0; i < n; ++i)
                            o[i * st[0]] = T(C(gs[i * st[2]]) * activation_derivative<OP, C>(C(xs[i * st[1]])));
                        }
                      });
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

void activation_grad(UnaryOp op, const Tensor& x, const Tensor& g, Tensor& out) {
  visit_dtype(x.dtype(), "activation_grad", [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      switch (op) {
        case UnaryOp::gelu_tanh: return activation_grad_typed<UnaryOp::gelu_tanh, T>(x, g, out);
        case UnaryOp::gelu: return activation_grad_typed<UnaryOp::gelu, T>(x, g, out);
        case UnaryOp::silu: return activation_grad_typed<UnaryOp::silu, T>(x, g, out);
        default: fail("activation_grad", "no fused derivative for ", unary_op_name(op));
      }
    } else {
      fail("activation_grad", "expects a floating-point tensor, got ", dtype_name(x.dtype()));
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

namespace {

template <UnaryOp OP>
void unary_block(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = apply_unary<OP, float>(x[i]);
}

template <BinaryOp OP>
void binary_block(const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n) {
  if (as == 1 && bs == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = apply_binary<OP, float>(a[i], b[i]);
  } else if (as == 1) {
    const float bv = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = apply_binary<OP, float>(a[i], bv);
  } else if (bs == 1) {
    const float av = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = apply_binary<OP, float>(av, b[i]);
  } else {
    const float v = apply_binary<OP, float>(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

}  // namespace

void unary_block_f32(UnaryOp op, const float* x, float* y, int64_t n) {
  switch (op) {
#define EMBER_CASE(K) \
  case UnaryOp::K: return unary_block<UnaryOp::K>(x, y, n);
    EMBER_UNARY_MATH_OPS(EMBER_CASE)
#undef EMBER_CASE
    case UnaryOp::logical_not: break;
  }
  fail("fused_elementwise", "unary ", unary_op_name(op), " has no float32 block form");
}

void binary_block_f32(BinaryOp op, const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n) {
  switch (op) {
#define EMBER_CASE(K) \
  case BinaryOp::K: return binary_block<BinaryOp::K>(a, as, b, bs, y, n);
    EMBER_BINARY_ARITH_OPS(EMBER_CASE)
#undef EMBER_CASE
    default: break;
  }
  fail("fused_elementwise", "binary ", binary_op_name(op), " has no float32 block form");
}


void clamp(const Tensor& in, double lo, double hi, Tensor& out) {
  visit_dtype(in.dtype(), "clamp", [&]<typename T>() {
    using C = compute_t<T>;
    const T* src = static_cast<const T*>(in.raw_data());
    T* dst = static_cast<T*>(out.raw_data());
    C l = elementwise::clamp_bound<C>(lo, true), h = elementwise::clamp_bound<C>(hi, false);
    for_each_strided<2>(out.shape(), {out.strides(), in.strides()},
                        [&](std::array<int64_t, 2> off, std::array<int64_t, 2> st, int64_t n) {
                          // NaN fails both comparisons and passes through.
                          auto f = [l, h](C v) EMBER_LAMBDA_INLINE { return T(v < l ? l : (v > h ? h : v)); };
                          T* o = dst + off[0];
                          const T* s = src + off[1];
                          if (st[0] == 1 && st[1] == 1) {
                            for (int64_t i = 0; i < n; ++i) o[i] = f(C(s[i]));
                          } else {
                            for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(C(s[i * st[1]]));
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
      auto convert = [](S v) EMBER_LAMBDA_INLINE -> D {
        if constexpr (std::is_same_v<S, D>) return v;
        else if constexpr (std::is_same_v<D, bool>) return compute_t<S>(v) != compute_t<S>(0);
        // Floats become integers through int64: a value outside a narrow type's range
        // wraps (as PyTorch's CPU casts do) instead of being undefined; CUDA does the same.
        else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<compute_t<S>>)
          return D(int64_t(compute_t<S>(v)));
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

#undef EMBER_INLINE
#undef EMBER_LAMBDA_INLINE

}  // namespace ember::cpu
