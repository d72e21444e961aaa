// CPU sort, top-k and cumulative sum. Lines are independent, so they run in
// parallel; within a line the work is serial (a sort of a single huge line is
// not a case the models need). Sort keys carry their original position and ties
// compare positions, which makes std::sort / std::partial_sort stable and the
// result independent of the library's algorithm.
#include "ember/backend/cpu/sort_kernels.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "ember/backend/cpu/loops.h"

namespace ember::cpu {
namespace {

template <typename C>
struct Key {
  C v;
  int64_t i;
};

template <typename C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return v != v;
  else return false;
}

// "a comes before b" in ascending order, NaN last.
template <typename C>
struct Ascending {
  bool operator()(const Key<C>& a, const Key<C>& b) const {
    bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an || bn) return an && bn ? a.i < b.i : bn;
    if (a.v != b.v) return a.v < b.v;
    return a.i < b.i;
  }
};
// Descending order, NaN first.
template <typename C>
struct Descending {
  bool operator()(const Key<C>& a, const Key<C>& b) const {
    bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an || bn) return an && bn ? a.i < b.i : an;
    if (a.v != b.v) return a.v > b.v;
    return a.i < b.i;
  }
};

template <typename T, typename Cmp>
void sort_typed(const T* x, int64_t outer, int64_t n, int64_t inner, int64_t k, T* vals, int64_t* idx) {
  using C = compute_t<T>;
  int64_t lines = outer * inner;
  bool parallel = lines > 1 && lines * std::max<int64_t>(n, 1) >= kParallelGrain;
#pragma omp parallel if (parallel)
  {
    std::vector<Key<C>> buf(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t line = 0; line < lines; ++line) {
      int64_t o = line / inner, i = line % inner;
      const T* src = x + o * n * inner + i;
      for (int64_t j = 0; j < n; ++j) buf[size_t(j)] = {C(src[j * inner]), j};
      // A heap-based partial sort wins only while k is small against n.
      if (k < n / 8) std::partial_sort(buf.begin(), buf.begin() + k, buf.end(), Cmp());
      else std::sort(buf.begin(), buf.end(), Cmp());
      T* vo = vals + o * k * inner + i;
      int64_t* io = idx + o * k * inner + i;
      for (int64_t j = 0; j < k; ++j) {
        int64_t from = buf[size_t(j)].i;
        vo[j * inner] = src[from * inner];  // the original element, bit for bit
        io[j * inner] = from;
      }
    }
  }
}

template <typename T, typename A>
void cumsum_typed(const T* x, int64_t outer, int64_t n, int64_t inner, bool reverse, T* out) {
  int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1));
  if (inner == 1) {
    parallel_for(outer, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* s = x + o * n;
        T* d = out + o * n;
        A acc = A(0);
        if (!reverse)
          for (int64_t j = 0; j < n; ++j) d[j] = T(acc += A(s[j]));
        else
          for (int64_t j = n; j-- > 0;) d[j] = T(acc += A(s[j]));
      }
    });
    return;
  }
  // Scan whole rows of `inner` at a time (vectorises); threads split the
  // (outer, inner) positions so each owns its own output columns.
  parallel_for(outer * inner, grain, [&](int64_t b, int64_t e) {
    std::vector<A> acc;
    int64_t pos = b;
    while (pos < e) {
      int64_t o = pos / inner, i0 = pos % inner;
      int64_t i1 = std::min(inner, i0 + (e - pos));
      acc.assign(size_t(i1 - i0), A(0));
      for (int64_t jj = 0; jj < n; ++jj) {
        int64_t j = reverse ? n - 1 - jj : jj;
        const T* s = x + (o * n + j) * inner;
        T* d = out + (o * n + j) * inner;
        for (int64_t i = i0; i < i1; ++i) d[i] = T(acc[size_t(i - i0)] += A(s[i]));
      }
      pos += i1 - i0;
    }
  });
}

}  // namespace

void sort_lines(const Tensor& x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool descending,
                Tensor& values, Tensor& indices) {
  if (outer * inner == 0 || k == 0) return;
  visit_dtype(x.dtype(), "sort", [&]<typename T>() {
    using C = compute_t<T>;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* vp = static_cast<T*>(values.raw_data());
    int64_t* ip = static_cast<int64_t*>(indices.raw_data());
    if (descending) sort_typed<T, Descending<C>>(xp, outer, n, inner, k, vp, ip);
    else sort_typed<T, Ascending<C>>(xp, outer, n, inner, k, vp, ip);
  });
}

void cumsum(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool reverse, Tensor& out) {
  if (outer * n * inner == 0) return;
  visit_dtype(x.dtype(), "cumsum", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail("cumsum", "bool tensors must be cast to an integer type first");
    } else {
      using A = std::conditional_t<std::is_integral_v<T>, int64_t, double>;
      cumsum_typed<T, A>(static_cast<const T*>(x.raw_data()), outer, n, inner, reverse,
                         static_cast<T*>(out.raw_data()));
    }
  });
}

}  // namespace ember::cpu
