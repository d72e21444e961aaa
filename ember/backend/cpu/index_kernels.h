// CPU kernels for the indexing ops: index_select / embedding rows, their
// deterministic scatter-add gradient, gather, scatter_add, one_hot and the
// triangular masks. Index tensors are int32 or int64; every kernel validates
// its indices before touching memory, so a bad index is an ember::Error, never
// an out-of-bounds read or write.
#pragma once

#include "ember/core/tensor.h"

namespace ember::cpu {

// Extents of a contiguous tensor viewed as [outer, n, inner] around `axis`
// (all 1 for a 0-d shape), the layout every kernel here works in.
struct AxisLayout {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisLayout axis_layout(const Shape& shape, int axis);
// `t` itself when contiguous, else a contiguous copy (kernel-side: no autograd).
Tensor as_contiguous(const Tensor& t);

// Throws "[op] index v is out of range [0, size) for <what>" for the first
// index outside [0, size). `index` must be a contiguous int32/int64 CPU tensor.
void check_indices(const Tensor& index, int64_t size, const char* op, const std::string& what);

// x: contiguous, viewed as [outer, n, inner]; index: contiguous 1-D of m
// entries in [0, n); out: contiguous [outer, m, inner]. out[o, j, :] = x[o, index[j], :].
// Here and below, indices are checked first; `what` names the indexed dimension in the error.
void index_select(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& index, Tensor& out,
                  const char* op, const std::string& what);

// g: contiguous [outer, m, inner]; index: contiguous 1-D of m entries in [0, size);
// out: contiguous [outer, size, inner], fully written:
//   out[o, d, :] = sum of g[o, j, :] over j with index[j] == d, in increasing j.
// Parallel over destination rows and deterministic (no atomics, fixed order).
void index_add_zeros(const Tensor& g, int64_t outer, int64_t m, int64_t inner, const Tensor& index, int64_t size,
                     Tensor& out, const char* op, const std::string& what);

// torch.gather along `axis`: x any strides; index contiguous with x's rank and
// index.shape[d] <= x.shape[d] for d != axis; out contiguous with index's shape.
void gather(const Tensor& x, int axis, const Tensor& index, Tensor& out);

// out (contiguous, already holding the base values) += src at index along axis;
// index contiguous, src any strides with index's shape. Parallel over the
// positions off the axis; along the axis, additions happen in index order.
void scatter_add(Tensor& out, int axis, const Tensor& index, const Tensor& src);

// ids: contiguous int32/int64; out: contiguous [..., classes] of any dtype.
void one_hot(const Tensor& ids, int64_t classes, Tensor& out);

// x: contiguous [batch, rows, cols]; out the same with the elements outside the
// triangle zeroed: tril keeps col - row <= k, triu keeps col - row >= k.
void triangle(const Tensor& x, int64_t batch, int64_t rows, int64_t cols, int64_t k, bool upper, Tensor& out);

}  // namespace ember::cpu
