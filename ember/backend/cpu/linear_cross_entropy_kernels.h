// CPU kernel for a language model's head and loss in one: the cross-entropy of
// x Wᵀ against integer targets, computed a block of rows at a time so that the
// logits [N, V] never exist whole (V is the vocabulary: for GPT-2's 50,257 and
// 8 x 1024 positions they would be 1.6 GB, and their gradient as much again).
#pragma once

#include <cstdint>

#include "ember/core/tensor.h"

namespace ember::cpu {

// Rows per block for an output width V: up to 512 (64 MiB of float32 logits at
// most, 128 rows at least). The block's products are what costs: timed once on
// the `small` preset (V 16384, 2 threads), blocks of 64 and 256 rows ran them in
// 1.44x and 1.13x the time of 512 (mostly the logits' product, whose m is the
// block's rows), and one block of all 2,048 rows in 1.05x.
int64_t linear_cross_entropy_block_rows(int64_t V);

// x [..., C] with N rows, weight [V, C] (float32, contiguous), targets [N] (int64 or int32;
// ignore_index rows add nothing). For every block of rows: logits = x Wᵀ, the
// rows' loss lse - z[t] into row_loss [N] (0 for ignored rows), and, when dx is
// defined, the gradient of the loss (the rows' sum, or their mean over the rows
// that are not ignored when `mean`): p = (softmax - onehot) / count overwrites
// the block's logits, then dx[rows] = p W and dweight += pᵀ x[rows] (dweight is
// written, not added to). Returns the number of rows that are not ignored.
// Throws (naming `op`) for a target out of [0, V) or targets not int64/int32.
int64_t linear_cross_entropy(const char* op, const Tensor& x, const Tensor& weight, const Tensor& targets,
                             int64_t ignore_index, bool mean, int64_t block_rows, Tensor& row_loss, Tensor& dx,
                             Tensor& dweight);

}  // namespace ember::cpu
