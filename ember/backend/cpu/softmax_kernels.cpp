// Softmax / log-softmax kernels. The last-axis case (inner == 1) works row by
// row: a max pass, an exp-and-sum pass and a scaling pass over a row that stays
// in cache, so memory sees one read and one write. Other axes process a block
// of columns at once, which keeps the loops unit-stride and vectorisable.
// Arithmetic is in compute_t<T> (float for the 16-bit types).
#include "ember/backend/cpu/softmax_kernels.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "ember/backend/cpu/loops.h"

namespace ember::cpu {
namespace {

// Columns handled together on the strided path: enough for long vector loops,
// few enough that the per-column statistics stay in L1.
constexpr int64_t kColumnBlock = 256;

template <typename T>
void softmax_row(bool log, const T* x, T* y, int64_t n) {
  using A = compute_t<T>;
  A m = max_of(x, n);
  A s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += vexp(A(x[i]) - m);
    A lse = m + std::log(s);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = T(A(x[i]) - lse);
    return;
  }
  if constexpr (std::is_same_v<T, A>) {
    // Keep the exponentials in y and rescale: one exp per element.
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) {
      A e = vexp(x[i] - m);
      y[i] = e;
      s += e;
    }
    A inv = A(1) / s;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  } else {
    // 16-bit outputs would round the unnormalised exponentials: recompute instead.
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += vexp(A(x[i]) - m);
    A inv = A(1) / s;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = T(vexp(A(x[i]) - m) * inv);
  }
}

template <typename T>
void softmax_backward_row(bool log, const T* y, const T* g, T* dx, int64_t n) {
  using A = compute_t<T>;
  A s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += A(g[i]);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = T(A(g[i]) - vexp(A(y[i])) * s);
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += A(g[i]) * A(y[i]);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = T(A(y[i]) * (A(g[i]) - s));
  }
}

// Softmax over the middle axis of one [n, inner] slab, for columns [c0, c1).
template <typename T>
void softmax_columns(bool log, const T* x, T* y, int64_t n, int64_t inner, int64_t c0, int64_t c1,
                     std::vector<compute_t<T>>& m, std::vector<compute_t<T>>& s) {
  using A = compute_t<T>;
  int64_t w = c1 - c0;
  m.assign(size_t(w), -std::numeric_limits<A>::infinity());
  s.assign(size_t(w), A(0));
  A* pm = m.data();
  A* ps = s.data();
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * inner + c0;
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) pm[c] = vmax(pm[c], A(xr[c]));
  }
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * inner + c0;
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) ps[c] += vexp(A(xr[c]) - pm[c]);
  }
  if (log) {
    for (int64_t c = 0; c < w; ++c) ps[c] = pm[c] + std::log(ps[c]);  // now the logsumexp
    for (int64_t r = 0; r < n; ++r) {
      const T* xr = x + r * inner + c0;
      T* yr = y + r * inner + c0;
#pragma omp simd
      for (int64_t c = 0; c < w; ++c) yr[c] = T(A(xr[c]) - ps[c]);
    }
    return;
  }
  for (int64_t c = 0; c < w; ++c) ps[c] = A(1) / ps[c];
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * inner + c0;
    T* yr = y + r * inner + c0;
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) yr[c] = T(vexp(A(xr[c]) - pm[c]) * ps[c]);
  }
}

template <typename T>
void softmax_backward_columns(bool log, const T* y, const T* g, T* dx, int64_t n, int64_t inner, int64_t c0,
                              int64_t c1, std::vector<compute_t<T>>& s) {
  using A = compute_t<T>;
  int64_t w = c1 - c0;
  s.assign(size_t(w), A(0));
  A* ps = s.data();
  for (int64_t r = 0; r < n; ++r) {
    const T* yr = y + r * inner + c0;
    const T* gr = g + r * inner + c0;
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) ps[c] += log ? A(gr[c]) : A(gr[c]) * A(yr[c]);
  }
  for (int64_t r = 0; r < n; ++r) {
    const T* yr = y + r * inner + c0;
    const T* gr = g + r * inner + c0;
    T* dr = dx + r * inner + c0;
    if (log) {
#pragma omp simd
      for (int64_t c = 0; c < w; ++c) dr[c] = T(A(gr[c]) - vexp(A(yr[c])) * ps[c]);
    } else {
#pragma omp simd
      for (int64_t c = 0; c < w; ++c) dr[c] = T(A(yr[c]) * (A(gr[c]) - ps[c]));
    }
  }
}

// Runs row_fn(o) for every outer index (inner == 1), or col_fn(o, c0, c1) over
// column blocks, in parallel.
template <typename RowFn, typename ColFn>
void for_rows_or_columns(int64_t outer, int64_t n, int64_t inner, RowFn&& row_fn, ColFn&& col_fn) {
  if (n == 0) return;
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, kParallelGrain / n), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) row_fn(o);
    });
    return;
  }
  int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
  int64_t per_task = std::min(inner, kColumnBlock) * n;
  parallel_for(outer * blocks, std::max<int64_t>(1, kParallelGrain / per_task), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t o = t / blocks, c0 = (t % blocks) * kColumnBlock;
      col_fn(o, c0, std::min(inner, c0 + kColumnBlock));
    }
  });
}

}  // namespace

void softmax_forward(bool log, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& y) {
  visit_floating(x.dtype(), log ? "log_softmax" : "softmax", [&]<typename T>() {
    const T* px = static_cast<const T*>(x.raw_data());
    T* py = static_cast<T*>(y.raw_data());
    for_rows_or_columns(
        outer, n, inner, [&](int64_t o) { softmax_row(log, px + o * n, py + o * n, n); },
        [&](int64_t o, int64_t c0, int64_t c1) {
          thread_local std::vector<compute_t<T>> m, s;
          softmax_columns(log, px + o * n * inner, py + o * n * inner, n, inner, c0, c1, m, s);
        });
  });
}

void softmax_backward(bool log, const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner,
                      Tensor& dx) {
  visit_floating(y.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&]<typename T>() {
    const T* py = static_cast<const T*>(y.raw_data());
    const T* pg = static_cast<const T*>(g.raw_data());
    T* pd = static_cast<T*>(dx.raw_data());
    for_rows_or_columns(
        outer, n, inner, [&](int64_t o) { softmax_backward_row(log, py + o * n, pg + o * n, pd + o * n, n); },
        [&](int64_t o, int64_t c0, int64_t c1) {
          thread_local std::vector<compute_t<T>> s;
          int64_t base = o * n * inner;
          softmax_backward_columns(log, py + base, pg + base, pd + base, n, inner, c0, c1, s);
        });
  });
}

}  // namespace ember::cpu
