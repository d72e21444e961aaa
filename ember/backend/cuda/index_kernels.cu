// CUDA indexing kernels (see index_kernels.h). Pure data movement (index_select,
// gather, triangle masks) is dispatched on the element size only, and row copies
// move the widest aligned word (up to 16 bytes) per thread; kernels that add
// dispatch on the dtype and add with atomics. Bad indices are never read or
// written through: the kernel skips them and raises a device flag.
#include "ember/backend/cuda/index_kernels.h"

#include <algorithm>
#include <cstdint>

#include "ember/backend/cpu/index_kernels.h"
#include "ember/backend/cuda/elementwise_kernels.h"
#include "ember/backend/cuda/kernel_utils.cuh"
#include "ember/backend/element_bytes.h"

namespace ember::cuda {
namespace {

// ---- index checks ------------------------------------------------------------

// A device int set to 1 by any thread that meets an index out of range.
class BadIndexFlag {
 public:
  BadIndexFlag(Device device, const char* op) : flag_(Tensor::empty({1}, DType::i32, device)), op_(op) {
    check(cudaMemsetAsync(ptr(), 0, sizeof(int), stream()), op_);
  }
  int* ptr() { return data_of<int>(flag_); }
  // Waits for the kernels queued so far and reads the flag.
  bool raised() {
    int host = 0;
    check(cudaMemcpyAsync(&host, ptr(), sizeof(int), cudaMemcpyDeviceToHost, stream()), op_);
    check(cudaStreamSynchronize(stream()), op_);
    return host != 0;
  }

 private:
  Tensor flag_;
  const char* op_;
};

// Throws the CPU's message for the first bad index of a device index tensor.
[[noreturn]] void report_bad_index(const Tensor& index, int64_t size, const char* op, const std::string& what) {
  Tensor host = Tensor::empty(index.shape(), index.dtype(), Device::cpu());
  copy_bytes(host, as_contiguous(index));
  cpu::check_indices(host, size, op, what);
  fail(op, "an index is out of range [0, ", size, ") for ", what);  // not reached
}

template <typename I>
void flag_bad_indices_typed(const I* idx, int64_t n, int64_t size, int* flag, const char* op) {
  for_each_index(n, op, [=] __device__(int64_t i) {
    if (uint64_t(int64_t(idx[i])) >= uint64_t(size)) *flag = 1;
  });
}

// For the cases where the main kernel visits no index (an empty row or outer extent).
void validate_indices(const Tensor& index, int64_t size, const char* op, const std::string& what) {
  if (index.numel() == 0) return;
  Tensor idx = as_contiguous(index);
  BadIndexFlag flag(index.device(), op);
  if (idx.dtype() == DType::i64)
    flag_bad_indices_typed<int64_t>(data_of<int64_t>(idx), idx.numel(), size, flag.ptr(), op);
  else
    flag_bad_indices_typed<int32_t>(data_of<int32_t>(idx), idx.numel(), size, flag.ptr(), op);
  if (flag.raised()) report_bad_index(index, size, op, what);
}

// ---- atomics -------------------------------------------------------------------

template <typename D, typename V>
__device__ __forceinline__ void atomic_accumulate(D* p, V v) {
  if constexpr (std::is_same_v<D, float>) {
    atomicAdd(p, float(v));
  } else if constexpr (std::is_same_v<D, double>) {
    atomicAdd(p, double(v));
  } else if constexpr (std::is_same_v<D, int32_t>) {
    atomicAdd(reinterpret_cast<int*>(p), int(v));
  } else if constexpr (std::is_same_v<D, int64_t>) {
    // Two's complement: an unsigned add wraps exactly like the signed one.
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(int64_t(v)));
  } else {
    static_assert(std::is_same_v<D, uint8_t>, "unsupported accumulation type");
    // No byte atomics: compare-and-swap the aligned word holding the byte (it lies
    // inside the allocation, whose blocks are 512-byte aligned and sized).
    uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~uintptr_t(3));
    unsigned int shift = unsigned(addr & 3) * 8u;
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      unsigned int byte = ((assumed >> shift) + unsigned(v)) & 0xffu;
      old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
    } while (assumed != old);
  }
}

template <typename T>
constexpr bool is_half_v = std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>;

void zero_fill(Tensor& t, const char* op) {
  if (t.nbytes() > 0) check(cudaMemsetAsync(t.raw_data(), 0, t.nbytes(), stream()), op);
}

// Elements of one row copy: the widest of 16/8/4/2/1 bytes that divides the row
// and the alignment of both base pointers.
struct alignas(16) Bytes16 {
  uint4 v;
};
template <typename F>
void visit_row_word(size_t row_bytes, const void* a, const void* b, F&& fn) {
  uintptr_t align = reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) | uintptr_t(row_bytes);
  if (align % 16 == 0) return fn.template operator()<Bytes16>();
  if (align % 8 == 0) return fn.template operator()<uint64_t>();
  if (align % 4 == 0) return fn.template operator()<uint32_t>();
  if (align % 2 == 0) return fn.template operator()<uint16_t>();
  return fn.template operator()<uint8_t>();
}


// ---- index_select / embedding --------------------------------------------------

template <typename E, typename I>
void index_select_kernel(const E* x, const I* idx, E* out, int64_t rows, int64_t m, int64_t n, int64_t row_words,
                         int* flag, const char* op) {
  for_each_index(rows * row_words, op, [=] __device__(int64_t t) {
    int64_t r = t / row_words, c = t - r * row_words;
    int64_t o = r / m, j = r - o * m;
    int64_t d = int64_t(idx[j]);
    if (uint64_t(d) >= uint64_t(n)) {
      *flag = 1;
      return;
    }
    out[t] = x[(o * n + d) * row_words + c];
  });
}

template <typename E>
void index_select_words(const Tensor& x, const Tensor& index, Tensor& out, int64_t rows, int64_t m, int64_t n,
                        int64_t row_words, int* flag, const char* op) {
  const E* xp = static_cast<const E*>(x.raw_data());
  E* op_ = static_cast<E*>(out.raw_data());
  if (index.dtype() == DType::i64)
    index_select_kernel<E, int64_t>(xp, data_of<int64_t>(index), op_, rows, m, n, row_words, flag, op);
  else
    index_select_kernel<E, int32_t>(xp, data_of<int32_t>(index), op_, rows, m, n, row_words, flag, op);
}

// ---- index_add_zeros -----------------------------------------------------------

template <typename S, typename D, typename I>
void index_add_kernel(const S* g, const I* idx, D* acc, int64_t rows, int64_t m, int64_t inner, int64_t size,
                      const char* op) {
  for_each_index(rows * inner, op, [=] __device__(int64_t t) {
    int64_t r = t / inner, c = t - r * inner;
    int64_t o = r / m, j = r - o * m;
    int64_t d = int64_t(idx[j]);
    if (uint64_t(d) >= uint64_t(size)) return;  // checked by the forward op
    atomic_accumulate(acc + (o * size + d) * inner + c, load(g + t));
  });
}

template <typename S, typename D>
void index_add_launch(const Tensor& g, const Tensor& index, D* acc, int64_t outer, int64_t m, int64_t inner,
                      int64_t size, const char* op) {
  const S* gp = data_of<S>(g);
  if (index.dtype() == DType::i64)
    index_add_kernel<S, D, int64_t>(gp, data_of<int64_t>(index), acc, outer * m, m, inner, size, op);
  else
    index_add_kernel<S, D, int32_t>(gp, data_of<int32_t>(index), acc, outer * m, m, inner, size, op);
}

template <typename T>
void index_add_zeros_typed(const Tensor& g, int64_t outer, int64_t m, int64_t inner, const Tensor& index,
                           int64_t size, Tensor& out, const char* op) {
  if constexpr (std::is_same_v<T, bool>) {
    fail(op, "cannot accumulate bool tensors");
  } else if constexpr (is_half_v<T>) {
    Tensor scratch = Tensor::empty(out.shape(), DType::f32, out.device());
    zero_fill(scratch, op);
    index_add_launch<T, float>(g, index, data_of<float>(scratch), outer, m, inner, size, op);
    copy_cast(scratch, out);
  } else {
    zero_fill(out, op);
    index_add_launch<T, T>(g, index, data_of<T>(out), outer, m, inner, size, op);
  }
}

// ---- gather / scatter_add ------------------------------------------------------

// A shape-only view with index's shape and `base`'s strides, the axis stride zeroed
// (the axis coordinate comes from the index): for make_indexer.
Tensor strided_like_index(const Tensor& index, const Tensor& base, int axis) {
  Tensor v = Tensor::unallocated(index.shape(), base.dtype(), base.device());
  v.impl().strides = base.strides();
  v.impl().strides[size_t(axis)] = 0;
  return v;
}

template <typename E, typename I>
void gather_kernel(const E* x, const I* idx, E* out, Indexer<2> ix, int64_t xa, int64_t n_axis, int64_t count,
                   int* flag) {
  for_each_index(count, "gather", [=] __device__(int64_t i) {
    int64_t off[2];
    ix.offsets(i, off);
    int64_t d = int64_t(idx[off[0]]);
    if (uint64_t(d) >= uint64_t(n_axis)) {
      *flag = 1;
      return;
    }
    out[i] = x[off[1] + d * xa];
  });
}

template <typename E>
void gather_typed(const Tensor& x, int axis, const Tensor& index, Tensor& out, int* flag) {
  Tensor xv = strided_like_index(index, x, axis);
  auto ix = make_indexer<2>(index.shape(), {&index, &xv}, "gather");
  int64_t xa = x.strides()[size_t(axis)], n = x.shape()[size_t(axis)];
  const E* xp = static_cast<const E*>(x.raw_data());
  E* op = static_cast<E*>(out.raw_data());
  if (index.dtype() == DType::i64)
    gather_kernel<E, int64_t>(xp, data_of<int64_t>(index), op, ix, xa, n, index.numel(), flag);
  else
    gather_kernel<E, int32_t>(xp, data_of<int32_t>(index), op, ix, xa, n, index.numel(), flag);
}

template <typename S, typename D, typename I>
void scatter_add_kernel(D* acc, const I* idx, const S* src, Indexer<3> ix, int64_t oa, int64_t n_axis,
                        int64_t count, int* flag) {
  for_each_index(count, "scatter_add", [=] __device__(int64_t i) {
    int64_t off[3];
    ix.offsets(i, off);
    int64_t d = int64_t(idx[off[0]]);
    if (uint64_t(d) >= uint64_t(n_axis)) {
      if (flag) *flag = 1;
      return;
    }
    atomic_accumulate(acc + off[2] + d * oa, load(src + off[1]));
  });
}

template <typename S, typename D>
void scatter_add_launch(D* acc, const Tensor& out, int axis, const Tensor& index, const Tensor& src, int* flag) {
  Tensor ov = strided_like_index(index, out, axis);
  auto ix = make_indexer<3>(index.shape(), {&index, &src, &ov}, "scatter_add");
  int64_t oa = out.strides()[size_t(axis)], n = out.shape()[size_t(axis)];
  const S* sp = data_of<S>(src);
  if (index.dtype() == DType::i64)
    scatter_add_kernel<S, D, int64_t>(acc, data_of<int64_t>(index), sp, ix, oa, n, index.numel(), flag);
  else
    scatter_add_kernel<S, D, int32_t>(acc, data_of<int32_t>(index), sp, ix, oa, n, index.numel(), flag);
}

template <typename T>
void scatter_add_typed(Tensor& out, int axis, const Tensor& index, const Tensor& src, int* flag) {
  if constexpr (std::is_same_v<T, bool>) {
    fail("scatter_add", "cannot accumulate bool tensors");
  } else if constexpr (is_half_v<T>) {
    // Accumulate in float (out is contiguous, so the scratch has its strides).
    Tensor scratch = Tensor::empty(out.shape(), DType::f32, out.device());
    copy_cast(out, scratch);
    scatter_add_launch<T, float>(data_of<float>(scratch), out, axis, index, src, flag);
    copy_cast(scratch, out);
  } else {
    scatter_add_launch<T, T>(data_of<T>(out), out, axis, index, src, flag);
  }
}

// ---- one_hot, triangle, masked_scale -----------------------------------------------

template <typename T, typename I>
void one_hot_kernel(const I* ids, T* out, int64_t n, int64_t classes, int* flag) {
  for_each_index(n, "one_hot", [=] __device__(int64_t i) {
    int64_t d = int64_t(ids[i]);
    if (uint64_t(d) >= uint64_t(classes)) {
      *flag = 1;
      return;
    }
    store(out + i * classes + d, acc_t<T>(1));
  });
}

template <typename T>
void one_hot_typed(const Tensor& ids, int64_t classes, Tensor& out, int* flag) {
  if (ids.dtype() == DType::i64)
    one_hot_kernel<T, int64_t>(data_of<int64_t>(ids), data_of<T>(out), ids.numel(), classes, flag);
  else
    one_hot_kernel<T, int32_t>(data_of<int32_t>(ids), data_of<T>(out), ids.numel(), classes, flag);
}

template <typename E>
void triangle_typed(const Tensor& x, int64_t total, int64_t rows, int64_t cols, int64_t k, bool upper, Tensor& out) {
  const E* xp = static_cast<const E*>(x.raw_data());
  E* op = static_cast<E*>(out.raw_data());
  for_each_index(total, upper ? "triu" : "tril", [=] __device__(int64_t t) {
    int64_t row = t / cols;
    int64_t diff = (t - row * cols) - row % rows;  // col - row within the matrix
    bool keep = upper ? diff >= k : diff <= k;
    op[t] = keep ? xp[t] : E(0);  // all-zero bits are 0 in every dtype
  });
}

template <typename T>
void masked_scale_typed(const Tensor& x, const Tensor& mask, double scale, Tensor& out) {
  using A = acc_t<T>;
  const A s = A(scale);
  auto ix = make_indexer<3>(out.shape(), {&out, &x, &mask}, "dropout");
  const T* px = data_of<T>(x);
  const bool* pm = data_of<bool>(mask);
  T* po = data_of<T>(out);
  for_each_index(out.numel(), "dropout", [=] __device__(int64_t i) {
    int64_t off[3];
    ix.offsets(i, off);
    store(po + off[0], pm[off[2]] ? load(px + off[1]) * s : A(0));
  });
}

}  // namespace

Tensor as_contiguous(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = Tensor::empty(t.shape(), t.dtype(), t.device());
  copy_cast(t, c);
  return c;
}

void index_select(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& index, Tensor& out,
                  const char* op, const std::string& what) {
  int64_t m = index.numel();
  int64_t rows = outer * m;
  size_t row_bytes = size_t(inner) * x.itemsize();
  if (rows == 0 || row_bytes == 0) {
    validate_indices(index, n, op, what);
    return;
  }
  BadIndexFlag flag(out.device(), op);
  visit_row_word(row_bytes, x.raw_data(), out.raw_data(), [&]<typename E>() {
    index_select_words<E>(x, index, out, rows, m, n, int64_t(row_bytes / sizeof(E)), flag.ptr(), op);
  });
  if (flag.raised()) report_bad_index(index, n, op, what);
}

void index_add_zeros(const Tensor& g, int64_t outer, int64_t m, int64_t inner, const Tensor& index, int64_t size,
                     Tensor& out, const char* op, const std::string&) {
  visit_device_dtype(g.dtype(), op, [&]<typename T>() {
    index_add_zeros_typed<T>(g, outer, m, inner, index, size, out, op);
  });
}

void gather(const Tensor& x, int axis, const Tensor& index, Tensor& out) {
  int64_t n = x.shape()[size_t(axis)];
  std::string what = str_cat("dimension ", axis, " of size ", n);
  if (index.numel() == 0) return;
  BadIndexFlag flag(out.device(), "gather");
  visit_element_bytes(x.itemsize(), [&]<typename E>() { gather_typed<E>(x, axis, index, out, flag.ptr()); });
  if (flag.raised()) report_bad_index(index, n, "gather", what);
}

void scatter_add(Tensor& out, int axis, const Tensor& index, const Tensor& src, bool checked) {
  int64_t n = out.shape()[size_t(axis)];
  if (index.numel() == 0) return;
  if (!checked) {
    visit_device_dtype(out.dtype(), "scatter_add",
                       [&]<typename T>() { scatter_add_typed<T>(out, axis, index, src, nullptr); });
    return;
  }
  BadIndexFlag flag(out.device(), "scatter_add");
  visit_device_dtype(out.dtype(), "scatter_add",
                     [&]<typename T>() { scatter_add_typed<T>(out, axis, index, src, flag.ptr()); });
  if (flag.raised())
    report_bad_index(index, n, "scatter_add", str_cat("dimension ", axis, " of size ", n));
}

void one_hot(const Tensor& ids, int64_t classes, Tensor& out) {
  zero_fill(out, "one_hot");
  if (ids.numel() == 0) return;
  BadIndexFlag flag(out.device(), "one_hot");
  visit_device_dtype(out.dtype(), "one_hot", [&]<typename T>() { one_hot_typed<T>(ids, classes, out, flag.ptr()); });
  if (flag.raised()) report_bad_index(ids, classes, "one_hot", str_cat(classes, " classes"));
}

void triangle(const Tensor& x, int64_t batch, int64_t rows, int64_t cols, int64_t k, bool upper, Tensor& out) {
  int64_t total = batch * rows * cols;
  if (total == 0) return;
  k = std::clamp<int64_t>(k, -rows - 1, cols + 1);  // beyond this the mask is all or nothing
  visit_element_bytes(x.itemsize(), [&]<typename E>() { triangle_typed<E>(x, total, rows, cols, k, upper, out); });
}

void masked_scale(const Tensor& x, const Tensor& mask, double scale, Tensor& out) {
  visit_device_floating(x.dtype(), "dropout", [&]<typename T>() { masked_scale_typed<T>(x, mask, scale, out); });
}

}  // namespace ember::cuda
