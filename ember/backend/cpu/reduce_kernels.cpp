// CPU reductions. A reduction over the innermost axis (inner == 1) uses 16
// independent accumulators, which the compiler turns into vector registers; a
// reduction over an outer axis accumulates whole rows, which vectorises along
// `inner`. Both are blocked (see below). Floats accumulate in float (double
// for float64), 16-bit types in float, integers in int64.
//
// As in elementwise_kernels.cpp: FP never traps in ember, and telling GCC so
// lets the NaN-propagating max/min selects vectorise.
#pragma GCC optimize("no-trapping-math")

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
  // One select, so that the lane loops vectorise: a NaN b wins, and a NaN a
  // stays because no comparison with it holds.
  static A combine(A a, A b) {
    if constexpr (!std::is_integral_v<A>) return b != b || b > a ? b : a;
    else return b > a ? b : a;
  }
};
template <typename A>
struct MinOp {
  static A init() {
    if constexpr (std::numeric_limits<A>::has_infinity) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
  static A combine(A a, A b) {
    if constexpr (!std::is_integral_v<A>) return b != b || b < a ? b : a;
    else return b < a ? b : a;
  }
};

// Reductions are blocked for accuracy and for parallelism: a long reduction is
// cut into fixed-size blocks, each block is reduced on its own, and the block
// results are combined in a fixed order. The block size never depends on the
// thread count, so the result is bit-identical however the work is split, and
// float sums of millions of elements keep ~1e-7 relative error instead of
// drifting with one long running sum.
constexpr int64_t kInnerBlock = 4096;  // elements of a contiguous row per block
constexpr int64_t kRowBlock = 64;      // rows per block of a strided (inner > 1) reduction

// Reduces n <= kInnerBlock contiguous elements with 16 independent accumulators
// (vector registers), folded pairwise.
template <typename T, typename A, typename Op>
A reduce_contiguous(const T* p, int64_t n) {
  constexpr int kLanes = 16;
  A acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = Op::init();
  int64_t r = 0;
  for (; r + kLanes <= n; r += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] = Op::combine(acc[l], A(p[r + l]));
  for (; r < n; ++r) acc[0] = Op::combine(acc[0], A(p[r]));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] = Op::combine(acc[l], acc[l + w]);
  return acc[0];
}

// Combines n partial results pairwise (in place), in a fixed order.
template <typename A, typename Op>
A combine_pairwise(A* p, int64_t n) {
  if (n == 0) return Op::init();
  for (int64_t w = 1; w < n; w *= 2)
    for (int64_t i = 0; i + w < n; i += 2 * w) p[i] = Op::combine(p[i], p[i + w]);
  return p[0];
}

// inner == 1: each output reduces one contiguous row of `red` elements.
template <typename T, typename A, typename Op>
void reduce_rows(const T* in, int64_t outer, int64_t red, T* out) {
  int64_t blocks = std::max<int64_t>(1, (red + kInnerBlock - 1) / kInnerBlock);
  if (blocks == 1) {
    parallel_for(outer, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(red, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) out[o] = T(reduce_contiguous<T, A, Op>(in + o * red, red));
    });
    return;
  }
  // Blocks of all rows are independent work items, so one long row (a full
  // reduction) still uses every thread.
  std::vector<A> partial(size_t(outer * blocks));
  parallel_for(outer * blocks, std::max<int64_t>(1, kParallelGrain / kInnerBlock), [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      int64_t o = w / blocks, k = w % blocks;
      int64_t start = k * kInnerBlock;
      partial[size_t(w)] = reduce_contiguous<T, A, Op>(in + o * red + start, std::min(kInnerBlock, red - start));
    }
  });
  for (int64_t o = 0; o < outer; ++o) out[o] = T(combine_pairwise<A, Op>(partial.data() + o * blocks, blocks));
}

// Accumulates rows [r0, r1) of the [red, inner] slab `base` into acc (columns [i0, i1)).
template <typename T, typename A, typename Op>
void accumulate_rows(const T* base, int64_t inner, int64_t r0, int64_t r1, int64_t i0, int64_t i1, A* acc) {
  for (int64_t i = i0; i < i1; ++i) acc[i - i0] = Op::init();
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = base + r * inner;
    for (int64_t i = i0; i < i1; ++i) acc[i - i0] = Op::combine(acc[i - i0], A(row[i]));
  }
}

// inner > 1: each output reduces a column of a [red, inner] slab; rows are
// taken kRowBlock at a time and the block results combined in order.
template <typename T, typename A, typename Op>
void reduce_columns(const T* in, int64_t outer, int64_t red, int64_t inner, T* out) {
  int64_t blocks = std::max<int64_t>(1, (red + kRowBlock - 1) / kRowBlock);
  int64_t outputs = outer * inner;
  int threads = omp_get_max_threads();
  bool split_rows = blocks > 1 && threads > 1 && outputs < int64_t(threads) * 4096 &&
                    outputs * red >= kParallelGrain;
  if (!split_rows) {
    // Parallel over outputs; each thread walks all rows of its columns.
    parallel_for(outputs, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(red, 1)),
                 [&](int64_t b, int64_t e) {
                   std::vector<A> total, block;
                   int64_t idx = b;
                   while (idx < e) {
                     int64_t o = idx / inner, i0 = idx % inner;
                     int64_t i1 = std::min(inner, i0 + (e - idx));
                     size_t n = size_t(i1 - i0);
                     total.assign(n, Op::init());
                     block.resize(n);
                     const T* base = in + o * red * inner;
                     for (int64_t k = 0; k < blocks; ++k) {
                       accumulate_rows<T, A, Op>(base, inner, k * kRowBlock, std::min(red, (k + 1) * kRowBlock), i0,
                                                 i1, block.data());
                       for (size_t i = 0; i < n; ++i) total[i] = Op::combine(total[i], block[i]);
                     }
                     for (int64_t i = i0; i < i1; ++i) out[o * inner + i] = T(total[size_t(i - i0)]);
                     idx += i1 - i0;
                   }
                 });
    return;
  }
  // Few outputs, many rows (a bias gradient summed over batch and time): the
  // row blocks are the work items; their results are combined in order after.
  std::vector<A> partial(size_t(outer * blocks * inner));
  parallel_for(outer * blocks, std::max<int64_t>(1, kParallelGrain / (kRowBlock * inner)), [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      int64_t o = w / blocks, k = w % blocks;
      accumulate_rows<T, A, Op>(in + o * red * inner, inner, k * kRowBlock, std::min(red, (k + 1) * kRowBlock), 0,
                                inner, partial.data() + w * inner);
    }
  });
  parallel_for(outputs, 4096, [&](int64_t b, int64_t e) {
    for (int64_t idx = b; idx < e; ++idx) {
      int64_t o = idx / inner, i = idx % inner;
      A total = Op::init();
      for (int64_t k = 0; k < blocks; ++k) total = Op::combine(total, partial[size_t((o * blocks + k) * inner + i)]);
      out[idx] = T(total);
    }
  });
}

template <typename T, typename A, typename Op>
void reduce_typed(const T* in, int64_t outer, int64_t red, int64_t inner, T* out) {
  if (inner == 1) reduce_rows<T, A, Op>(in, outer, red, out);
  else reduce_columns<T, A, Op>(in, outer, red, inner, out);
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
