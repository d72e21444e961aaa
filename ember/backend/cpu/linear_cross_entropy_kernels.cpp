// The blocked head-and-loss kernel (see linear_cross_entropy_kernels.h).
//
// Per block of rows the three products of a head's training step run back to
// back on one block's logits: z = x Wᵀ, then (after the softmax pass turns z
// into the logits' gradient in place) dx = p W and dW += pᵀ x. The softmax
// pass works each row while it is in cache (max, then exponentials and their
// sum, then the scaling), where separate cross-entropy forward and backward
// kernels each stream the whole logits from memory.
#include "ember/backend/cpu/linear_cross_entropy_kernels.h"

#include <algorithm>
#include <cmath>

#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/loops.h"
#include "ember/backend/cpu/softmax_kernels.h"
#include "ember/core/error.h"

namespace ember::cpu {
namespace {

// Per row of the block: loss = lse - z[t]; with gradients, z becomes
// (softmax(z) - onehot(t)) * scale (all zeros for an ignored row).
template <typename I>
void softmax_rows(float* z, const I* t, int64_t rows, int64_t V, int64_t ignore_index, bool grads, float scale,
                  float* row_loss) {
  parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(V, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* zr = z + r * V;
      const int64_t tr = int64_t(t[r]);
      const bool ignored = tr == ignore_index;
      const float m = max_of(zr, V);
      const float z_target = ignored ? 0.0f : zr[tr];  // read before the row is overwritten
      float s = 0;
      if (grads && !ignored) {
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < V; ++c) {
          const float ec = vexp(zr[c] - m);
          zr[c] = ec;
          s += ec;
        }
      } else {
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < V; ++c) s += vexp(zr[c] - m);
      }
      const float lse = m + std::log(s);
      row_loss[r] = ignored ? 0.0f : lse - z_target;
      if (!grads) continue;
      if (ignored) {
        std::fill(zr, zr + V, 0.0f);
        continue;
      }
      const float k = scale / s;
#pragma omp simd
      for (int64_t c = 0; c < V; ++c) zr[c] *= k;
      zr[tr] -= scale;
    }
  });
}

}  // namespace

int64_t linear_cross_entropy_block_rows(int64_t V) {
  const int64_t rows = (int64_t(64) << 20) / (4 * std::max<int64_t>(V, 1));
  return std::clamp<int64_t>(rows, 128, 512);
}

int64_t linear_cross_entropy(const char* op, const Tensor& x, const Tensor& weight, const Tensor& targets,
                             int64_t ignore_index, bool mean, int64_t block_rows, Tensor& row_loss, Tensor& dx,
                             Tensor& dweight) {
  const int64_t N = targets.numel(), V = weight.shape(0), C = weight.shape(1);
  const bool grads = dx.defined();
  if (block_rows <= 0) block_rows = linear_cross_entropy_block_rows(V);
  block_rows = std::min(block_rows, std::max<int64_t>(N, 1));
  const float* px = x.data<float>();
  const float* pw = weight.data<float>();
  float* loss = row_loss.data<float>();
  float* pdx = grads ? dx.data<float>() : nullptr;
  float* pdw = grads ? dweight.data<float>() : nullptr;
  int64_t count = 0;
  auto run = [&]<typename I>() {
    const I* t = static_cast<const I*>(targets.raw_data());
    for (int64_t n = 0; n < N; ++n) {
      const int64_t v = int64_t(t[n]);
      if (v != ignore_index && (v < 0 || v >= V))
        fail(op, "target ", v, " at position ", n, " is out of range [0, ", V, ") and is not ignore_index (",
             ignore_index, ")");
      count += v != ignore_index;
    }
    // The mean's gradient divides by at least 1: with every target ignored the
    // loss is 0 / 0 = nan (as in PyTorch) but the gradients are zero.
    const float grad_scale = mean ? 1.0f / float(std::max<int64_t>(count, 1)) : 1.0f;
    if (grads && N == 0) std::fill(pdw, pdw + V * C, 0.0f);
    Tensor block = Tensor::empty({block_rows, V}, DType::f32, x.device());
    float* z = block.data<float>();
    for (int64_t r0 = 0; r0 < N; r0 += block_rows) {
      const int64_t rows = std::min(block_rows, N - r0);
      gemm(false, true, rows, V, C, 1.0f, px + r0 * C, C, pw, C, 0.0f, z, V);
      softmax_rows(z, t + r0, rows, V, ignore_index, grads, grad_scale, loss + r0);
      if (!grads) continue;
      gemm(false, false, rows, C, V, 1.0f, z, V, pw, C, 0.0f, pdx + r0 * C, C);
      gemm(true, false, V, C, rows, 1.0f, z, V, px + r0 * C, C, r0 == 0 ? 0.0f : 1.0f, pdw, C);
    }
  };
  if (targets.dtype() == DType::i64) run.template operator()<int64_t>();
  else if (targets.dtype() == DType::i32) run.template operator()<int32_t>();
  else fail(op, "targets must be int64 or int32, got ", dtype_name(targets.dtype()));
  return count;
}

}  // namespace ember::cpu
