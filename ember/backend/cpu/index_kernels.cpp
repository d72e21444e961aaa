// CPU indexing kernels. Pure data movement (index_select, gather, triangle
// masks) is dispatched on the element size only, since bytes are bytes; kernels
// that add (index_add, scatter_add) dispatch on the dtype and add 16-bit floats
// in float. Additions that can collide are ordered, never atomic, so gradients
// are bit-identical from run to run and for any thread count.
#include "ember/backend/cpu/index_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/loops.h"
#include "ember/backend/element_bytes.h"

namespace ember::cpu {
namespace {

template <typename F>
decltype(auto) visit_index(DType dt, const char* op, F&& fn) {
  if (dt == DType::i64) return fn.template operator()<int64_t>();
  if (dt == DType::i32) return fn.template operator()<int32_t>();
  fail(op, "indices must be int64 or int32, got ", dtype_name(dt));
}

}  // namespace

AxisLayout axis_layout(const Shape& shape, int axis) {
  AxisLayout L;
  for (int d = 0; d < int(shape.size()); ++d) {
    if (d < axis) L.outer *= shape[size_t(d)];
    else if (d == axis) L.n = shape[size_t(d)];
    else L.inner *= shape[size_t(d)];
  }
  return L;
}

Tensor as_contiguous(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = Tensor::empty(t.shape(), t.dtype(), t.device());
  copy_cast(t, c);
  return c;
}

void check_indices(const Tensor& index, int64_t size, const char* op, const std::string& what) {
  visit_index(index.dtype(), op, [&]<typename I>() {
    const I* p = static_cast<const I*>(index.raw_data());
    int64_t n = index.numel();
    // One unsigned compare catches negatives too; the loop vectorises.
    int bad = 0;
#pragma omp parallel for reduction(| : bad) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) bad |= int(uint64_t(int64_t(p[i])) >= uint64_t(size));
    if (!bad) return;
    for (int64_t i = 0; i < n; ++i)
      if (int64_t(p[i]) < 0 || int64_t(p[i]) >= size)
        fail(op, "index ", int64_t(p[i]), " is out of range [0, ", size, ") for ", what);
  });
}

void index_select(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& index, Tensor& out,
                  const char* op, const std::string& what) {
  check_indices(index, n, op, what);
  int64_t m = index.numel();
  size_t row_bytes = size_t(inner) * x.itemsize();
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  int64_t rows = outer * m;
  if (rows == 0 || inner == 0) return;
  int64_t grain = std::max<int64_t>(1, kParallelGrain / inner);
  visit_index(index.dtype(), op, [&]<typename I>() {
    const I* idx = static_cast<const I*>(index.raw_data());
    if (inner == 1) {  // one element per row: a typed gather beats memcpy calls
      visit_element_bytes(x.itemsize(), [&]<typename E>() {
        const E* s = reinterpret_cast<const E*>(src);
        E* d = reinterpret_cast<E*>(dst);
        parallel_for(rows, grain, [&](int64_t b, int64_t e) {
          for (int64_t r = b; r < e; ++r) d[r] = s[(r / m) * n + int64_t(idx[r % m])];
        });
      });
      return;
    }
    // The embedding hot path: whole rows, copied in parallel.
    parallel_for(rows, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        int64_t o = r / m, j = r % m;
        std::memcpy(dst + size_t(r) * row_bytes, src + size_t(o * n + int64_t(idx[j])) * row_bytes, row_bytes);
      }
    });
  });
}

void index_add_zeros(const Tensor& g, int64_t outer, int64_t m, int64_t inner, const Tensor& index, int64_t size,
                     Tensor& out, const char* op, const std::string& what) {
  check_indices(index, size, op, what);
  visit_index(index.dtype(), op, [&]<typename I>() {
    const I* idx = static_cast<const I*>(index.raw_data());
    // Group source positions by destination row (a stable counting sort), so
    // that each destination row is owned by one thread and summed in order.
    std::vector<int64_t> start(size_t(size) + 1, 0), order(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) ++start[size_t(idx[j]) + 1];
    for (int64_t d = 0; d < size; ++d) start[size_t(d) + 1] += start[size_t(d)];
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t j = 0; j < m; ++j) order[size_t(next[size_t(idx[j])]++)] = j;

    visit_dtype(g.dtype(), op, [&]<typename T>() {
      if constexpr (std::is_same_v<T, bool>) {
        fail(op, "cannot accumulate bool tensors");
      } else {
        using A = compute_t<T>;
        const T* gp = static_cast<const T*>(g.raw_data());
        T* op_ = static_cast<T*>(out.raw_data());
        int64_t rows = outer * size;
        int64_t work = (rows + outer * m) * std::max<int64_t>(inner, 1);
        int64_t chunk = std::max<int64_t>(1, 4096 / std::max<int64_t>(inner, 1));
#pragma omp parallel if (work >= kParallelGrain)
        {
          std::vector<A> acc(static_cast<size_t>(inner));
          // Dynamic: frequent tokens make some rows much heavier than others.
#pragma omp for schedule(dynamic, chunk)
          for (int64_t r = 0; r < rows; ++r) {
            int64_t o = r / size, d = r % size;
            std::fill(acc.begin(), acc.end(), A(0));
            for (int64_t p = start[size_t(d)]; p < start[size_t(d) + 1]; ++p) {
              const T* src = gp + (o * m + order[size_t(p)]) * inner;
              for (int64_t i = 0; i < inner; ++i) acc[size_t(i)] += A(src[i]);
            }
            T* dst = op_ + r * inner;
            for (int64_t i = 0; i < inner; ++i) dst[i] = T(acc[size_t(i)]);
          }
        }
      }
    });
  });
}

void gather(const Tensor& x, int axis, const Tensor& index, Tensor& out) {
  check_indices(index, x.shape()[size_t(axis)], "gather",
                str_cat("dimension ", axis, " of size ", x.shape()[size_t(axis)]));
  Strides xs = x.strides();
  int64_t xa = xs[size_t(axis)];
  xs[size_t(axis)] = 0;  // the axis coordinate comes from the index instead
  visit_index(index.dtype(), "gather", [&]<typename I>() {
    const I* ip = static_cast<const I*>(index.raw_data());
    visit_element_bytes(x.itemsize(), [&]<typename E>() {
      const E* xp = static_cast<const E*>(x.raw_data());
      E* op = static_cast<E*>(out.raw_data());
      for_each_strided<3>(index.shape(), {out.strides(), index.strides(), xs},
                          [&](std::array<int64_t, 3> off, std::array<int64_t, 3> st, int64_t n) {
                            E* o = op + off[0];
                            const I* ii = ip + off[1];
                            const E* xx = xp + off[2];
                            for (int64_t t = 0; t < n; ++t) o[t * st[0]] = xx[t * st[2] + int64_t(ii[t * st[1]]) * xa];
                          });
    });
  });
}

void scatter_add(Tensor& out, int axis, const Tensor& index, const Tensor& src) {
  check_indices(index, out.shape()[size_t(axis)], "scatter_add",
                str_cat("dimension ", axis, " of size ", out.shape()[size_t(axis)]));
  Shape s = index.shape();
  int64_t J = s[size_t(axis)];
  s[size_t(axis)] = 1;  // iterate off-axis positions; each walks its own axis serially
  int64_t oa = out.strides()[size_t(axis)], ia = index.strides()[size_t(axis)], sa = src.strides()[size_t(axis)];
  visit_index(index.dtype(), "scatter_add", [&]<typename I>() {
    const I* ip = static_cast<const I*>(index.raw_data());
    visit_dtype(out.dtype(), "scatter_add", [&]<typename T>() {
      if constexpr (std::is_same_v<T, bool>) {
        fail("scatter_add", "cannot accumulate bool tensors");
      } else {
        using C = compute_t<T>;
        T* op = static_cast<T*>(out.raw_data());
        const T* sp = static_cast<const T*>(src.raw_data());
        for_each_strided<3>(
            s, {out.strides(), index.strides(), src.strides()},
            [&](std::array<int64_t, 3> off, std::array<int64_t, 3> st, int64_t n) {
              for (int64_t j = 0; j < J; ++j)
                for (int64_t t = 0; t < n; ++t) {
                  T& d = op[off[0] + t * st[0] + int64_t(ip[off[1] + t * st[1] + j * ia]) * oa];
                  d = T(C(d) + C(sp[off[2] + t * st[2] + j * sa]));
                }
            },
            std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(J, 1)));
      }
    });
  });
}

void one_hot(const Tensor& ids, int64_t classes, Tensor& out) {
  check_indices(ids, classes, "one_hot", str_cat(classes, " classes"));
  std::memset(out.raw_data(), 0, out.nbytes());
  int64_t n = ids.numel();
  visit_index(ids.dtype(), "one_hot", [&]<typename I>() {
    const I* ip = static_cast<const I*>(ids.raw_data());
    visit_dtype(out.dtype(), "one_hot", [&]<typename T>() {
      T* op = static_cast<T*>(out.raw_data());
      const T one = T(compute_t<T>(1));
      parallel_for(n, kParallelGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) op[i * classes + int64_t(ip[i])] = one;
      });
    });
  });
}

void triangle(const Tensor& x, int64_t batch, int64_t rows, int64_t cols, int64_t k, bool upper, Tensor& out) {
  int64_t total = batch * rows;
  if (total == 0 || cols == 0) return;
  k = std::clamp<int64_t>(k, -rows - 1, cols + 1);  // beyond this the mask is all or nothing
  int64_t grain = std::max<int64_t>(1, kParallelGrain / cols);
  visit_element_bytes(x.itemsize(), [&]<typename E>() {
    const E* xp = static_cast<const E*>(x.raw_data());
    E* op = static_cast<E*>(out.raw_data());
    parallel_for(total, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        int64_t i = r % rows;
        const E* s = xp + r * cols;
        E* d = op + r * cols;
        // tril keeps columns [0, i + k]; triu keeps [i + k, cols). All-zero bits are 0 in every dtype.
        int64_t split = std::clamp<int64_t>(upper ? i + k : i + k + 1, 0, cols);
        int64_t keep_b = upper ? split : 0, keep_e = upper ? cols : split;
        for (int64_t c = 0; c < cols; ++c) d[c] = (c >= keep_b && c < keep_e) ? s[c] : E(0);
      }
    });
  });
}

}  // namespace ember::cpu
