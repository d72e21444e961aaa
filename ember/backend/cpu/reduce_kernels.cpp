// CPU reductions. A reduction over the innermost axis (inner == 1) uses 16
// independent accumulators, which the compiler turns into vector registers and
// which are also more accurate than one running sum; a reduction over an outer
// axis accumulates whole rows, which vectorises along `inner`. Floats
// accumulate in float (double for float64), 16-bit types in float.
#include "ember/backend/cpu/reduce_kernels.h"

#include <cmath>
#include <limits>
#include <vector>

#include "ember/backend/cpu/loops.h"

namespace ember::cpu {
namespace {

template <typename A>
struct SumOp {
  static A init() { return A(0); }
  static A combine(A a, A b) { return a + b; }
};
template <typename A>
struct ProdOp {
  static A init() { return A(1); }
  static A combine(A a, A b) { return a * b; }
};
template <typename A>
struct MaxOp {
  static A init() {
    if constexpr (std::numeric_limits<A>::has_infinity) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  }
  static A combine(A a, A b) {
    if constexpr (!std::is_integral_v<A>) if (b != b) return b;  // NaN propagates
    return b > a ? b : a;
  }
};
template <typename A>
struct MinOp {
  static A init() {
    if constexpr (std::numeric_limits<A>::has_infinity) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
  static A combine(A a, A b) {
    if constexpr (!std::is_integral_v<A>) if (b != b) return b;
    return b < a ? b : a;
  }
};

template <typename T, typename A, typename Op>
void reduce_typed(const T* in, int64_t outer, int64_t red, int64_t inner, T* out) {
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(red, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = in + o * red;
        constexpr int kLanes = 16;
        A acc[kLanes];
        for (int l = 0; l < kLanes; ++l) acc[l] = Op::init();
        int64_t r = 0;
        for (; r + kLanes <= red; r += kLanes)
          for (int l = 0; l < kLanes; ++l) acc[l] = Op::combine(acc[l], A(row[r + l]));
        for (; r < red; ++r) acc[0] = Op::combine(acc[0], A(row[r]));
        for (int w = kLanes / 2; w > 0; w /= 2)
          for (int l = 0; l < w; ++l) acc[l] = Op::combine(acc[l], acc[l + w]);
        out[o] = T(acc[0]);
      }
    });
    return;
  }
  // Split the inner dimension across threads so each writes its own outputs.
  parallel_for(outer * inner, kParallelGrain / 8, [&](int64_t b, int64_t e) {
    std::vector<A> acc;
    int64_t idx = b;
    while (idx < e) {
      int64_t o = idx / inner, i0 = idx % inner;
      int64_t i1 = std::min(inner, i0 + (e - idx));
      acc.assign(size_t(i1 - i0), Op::init());
      const T* base = in + o * red * inner;
      for (int64_t r = 0; r < red; ++r) {
        const T* row = base + r * inner;
        for (int64_t i = i0; i < i1; ++i) acc[size_t(i - i0)] = Op::combine(acc[size_t(i - i0)], A(row[i]));
      }
      for (int64_t i = i0; i < i1; ++i) out[o * inner + i] = T(acc[size_t(i - i0)]);
      idx += i1 - i0;
    }
  });
}

}  // namespace

void reduce(ReduceOp op, const Tensor& in, int64_t outer, int64_t red, int64_t inner, Tensor& out) {
  visit_dtype(in.dtype(), reduce_op_name(op), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(reduce_op_name(op), "is not defined for bool tensors; cast first");
    } else {
      using A = std::conditional_t<std::is_integral_v<T>, int64_t, compute_t<T>>;
      const T* pi = static_cast<const T*>(in.raw_data());
      T* po = static_cast<T*>(out.raw_data());
      switch (op) {
        case ReduceOp::sum: return reduce_typed<T, A, SumOp<A>>(pi, outer, red, inner, po);
        case ReduceOp::prod: return reduce_typed<T, A, ProdOp<A>>(pi, outer, red, inner, po);
        case ReduceOp::max: return reduce_typed<T, A, MaxOp<A>>(pi, outer, red, inner, po);
        case ReduceOp::min: return reduce_typed<T, A, MinOp<A>>(pi, outer, red, inner, po);
      }
    }
  });
}

void arg_reduce(bool is_max, const Tensor& in, int64_t outer, int64_t red, int64_t inner, Tensor& out) {
  visit_dtype(in.dtype(), is_max ? "argmax" : "argmin", [&]<typename T>() {
    using C = compute_t<T>;
    const T* pi = static_cast<const T*>(in.raw_data());
    int64_t* po = static_cast<int64_t*>(out.raw_data());
    parallel_for(outer * inner, 4096, [&](int64_t b, int64_t e) {
      for (int64_t idx = b; idx < e; ++idx) {
        int64_t o = idx / inner, i = idx % inner;
        const T* p = pi + o * red * inner + i;
        C best = C(p[0]);
        int64_t best_r = 0;
        for (int64_t r = 1; r < red; ++r) {
          C v = C(p[r * inner]);
          if constexpr (!std::is_integral_v<C>) {
            if (best != best) break;  // a NaN wins, as in PyTorch
            if (v != v) {
              best = v;
              best_r = r;
              break;
            }
          }
          if (is_max ? v > best : v < best) {
            best = v;
            best_r = r;
          }
        }
        po[idx] = best_r;
      }
    });
  });
}

}  // namespace ember::cpu
