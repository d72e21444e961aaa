// CUDA kernels for the indexing ops (the counterparts of backend/cpu/index_kernels.h,
// same layouts and contracts): index_select / embedding rows, their scatter-add
// gradient, gather, scatter_add, one_hot and the triangular masks, plus dropout's
// masked scale. Every tensor lives on one CUDA device; index tensors are int32
// or int64.
//
// Index checks: the forward kernels (index_select, embedding, gather, scatter_add,
// one_hot) skip an out-of-range index and raise a device flag, which the host
// reads back after the kernel (one 4-byte copy, which waits for the GPU); when it
// is set, the index is copied to the host and checked there, so the error is the
// CPU's "[op] index v is out of range [0, size) for <what>". The gradient kernels
// (index_add_zeros, scatter_add_zeros) receive indices their forward op already
// checked (or a sort produced): they skip bad indices without a read-back, so the
// backward pass never waits for the GPU.
//
// Additions that can collide use atomics (float, double, int32, int64 natively;
// uint8 by compare-and-swap); bf16 and f16 accumulate in a float scratch buffer
// that is rounded once at the end, as the CPU adds them in float. Atomic order
// varies from run to run, so float gradients are not bit-reproducible on the GPU.
#pragma once

#include <string>

#include "ember/core/tensor.h"

namespace ember::cuda {

// `t` itself when contiguous, else a contiguous copy on its device (no autograd).
Tensor as_contiguous(const Tensor& t);

// x: contiguous [outer, n, inner]; index: contiguous 1-D of m entries in [0, n);
// out: contiguous [outer, m, inner]. out[o, j, :] = x[o, index[j], :].
void index_select(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& index, Tensor& out,
                  const char* op, const std::string& what);

// g: contiguous [outer, m, inner]; index: contiguous 1-D of m entries in [0, size);
// out: contiguous [outer, size, inner], fully written:
//   out[o, d, :] = sum of g[o, j, :] over j with index[j] == d (atomics, any order).
void index_add_zeros(const Tensor& g, int64_t outer, int64_t m, int64_t inner, const Tensor& index, int64_t size,
                     Tensor& out, const char* op, const std::string& what);

// torch.gather along `axis`: x any strides; index contiguous with x's rank and
// index.shape[d] <= x.shape[d] for d != axis; out contiguous with index's shape.
void gather(const Tensor& x, int axis, const Tensor& index, Tensor& out);

// out (contiguous, already holding the base values) += src at index along axis;
// index contiguous, src any strides with index's shape. `checked`: read the
// device flag back and report a bad index (false for gradients, see above).
void scatter_add(Tensor& out, int axis, const Tensor& index, const Tensor& src, bool checked = true);

// ids: contiguous int32/int64; out: contiguous [..., classes] of any dtype.
void one_hot(const Tensor& ids, int64_t classes, Tensor& out);

// x: contiguous [batch, rows, cols]; out the same with the elements outside the
// triangle zeroed: tril keeps col - row <= k, triu keeps col - row >= k.
void triangle(const Tensor& x, int64_t batch, int64_t rows, int64_t cols, int64_t k, bool upper, Tensor& out);

// dropout: out = mask ? x * scale : 0, in x's compute type. x and mask (bool) any
// strides with out's shape; x floating-point.
void masked_scale(const Tensor& x, const Tensor& mask, double scale, Tensor& out);

}  // namespace ember::cuda
