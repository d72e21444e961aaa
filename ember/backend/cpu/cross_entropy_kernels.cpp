// Cross-entropy kernels. The forward pass reads each row of logits twice while
// it is in cache (max, then sum of exponentials) and keeps only the row's
// logsumexp, so the backward pass can rebuild softmax as exp(z - lse) in a single
// sweep that also subtracts the one-hot term at the target column.
#include "ember/backend/cpu/cross_entropy_kernels.h"

#include <algorithm>
#include <limits>

#include "ember/backend/cpu/loops.h"
#include "ember/backend/cpu/softmax_kernels.h"

namespace ember::cpu {
namespace {

template <typename I>
void check_targets(const I* t, int64_t n, int64_t C, int64_t ignore_index) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = int64_t(t[i]);
    if (v != ignore_index && (v < 0 || v >= C))
      fail("cross_entropy", "target ", v, " at position ", i, " is out of range [0, ", C, ") and is not ignore_index (",
           ignore_index, ")");
  }
}

// Calls fn.template operator()<I>() with I the index type of the targets.
template <typename Fn>
void visit_targets(const Tensor& targets, Fn&& fn) {
  if (targets.dtype() == DType::i64) fn.template operator()<int64_t>();
  else if (targets.dtype() == DType::i32) fn.template operator()<int32_t>();
  else fail("cross_entropy", "targets must be int64 or int32, got ", dtype_name(targets.dtype()));
}

}  // namespace

void check_cross_entropy_targets(const Tensor& targets, int64_t C, int64_t ignore_index) {
  visit_targets(targets, [&]<typename I>() {
    check_targets(static_cast<const I*>(targets.raw_data()), targets.numel(), C, ignore_index);
  });
}

int64_t count_cross_entropy_targets(const Tensor& targets, int64_t ignore_index) {
  int64_t count = 0;
  visit_targets(targets, [&]<typename I>() {
    const I* t = static_cast<const I*>(targets.raw_data());
    for (int64_t i = 0, n = targets.numel(); i < n; ++i) count += int64_t(t[i]) != ignore_index;
  });
  return count;
}

int64_t cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& row_loss,
                              Tensor& lse) {
  int64_t N = targets.numel();
  int64_t C = logits.shape().back();
  int64_t count = 0;
  visit_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    using A = compute_t<T>;
    visit_targets(targets, [&]<typename I>() {
      const T* z = static_cast<const T*>(logits.raw_data());
      const I* t = static_cast<const I*>(targets.raw_data());
      A* loss = static_cast<A*>(row_loss.raw_data());
      A* plse = static_cast<A*>(lse.raw_data());
      check_targets(t, N, C, ignore_index);
      for (int64_t n = 0; n < N; ++n) count += int64_t(t[n]) != ignore_index;
      parallel_for(N, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n) {
          const T* zr = z + n * C;
          const A m = max_of(zr, C);
          A s = 0;
#pragma omp simd reduction(+ : s)
          for (int64_t c = 0; c < C; ++c) s += vexp(A(zr[c]) - m);
          A l = m + std::log(s);
          plse[n] = l;
          int64_t tn = int64_t(t[n]);
          loss[n] = tn == ignore_index ? A(0) : l - A(zr[tn]);
        }
      });
    });
  });
  return count;
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                            const Tensor& g, bool per_row_g, double divisor, Tensor& dlogits) {
  int64_t N = targets.numel();
  int64_t C = logits.shape().back();
  visit_floating(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    using A = compute_t<T>;
    visit_targets(targets, [&]<typename I>() {
      const T* z = static_cast<const T*>(logits.raw_data());
      const I* t = static_cast<const I*>(targets.raw_data());
      const A* plse = static_cast<const A*>(lse.raw_data());
      const T* pg = static_cast<const T*>(g.raw_data());
      T* dz = static_cast<T*>(dlogits.raw_data());
      check_targets(t, N, C, ignore_index);
      const A inv_div = A(1.0 / divisor);
      parallel_for(N, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n) {
          const T* zr = z + n * C;
          T* dr = dz + n * C;
          int64_t tn = int64_t(t[n]);
          if (tn == ignore_index) {
            std::fill(dr, dr + C, T(0));
            continue;
          }
          const A scale = A(pg[per_row_g ? n : 0]) * inv_div;
          const A l = plse[n];
          // Read before the row is written: dlogits may be the logits' own
          // buffer (a compiled graph's memory plan writes it in place).
          const A z_target = A(zr[tn]);
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) dr[c] = T(vexp(A(zr[c]) - l) * scale);
          dr[tn] = T((vexp(z_target - l) - A(1)) * scale);  // recomputed: no double rounding in 16 bits
        }
      });
    });
  });
}

}  // namespace ember::cpu
