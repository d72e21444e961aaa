// CUDA cross-entropy kernels. Forward: a warp (C <= 1024) or a block of up to
// 1024 threads (a GPT vocabulary of 50257) owns a row: max, then the sum of
// exponentials, each reduced across the group; it writes the row's logsumexp and
// loss. The mean / sum over rows is one block summing in double. Backward: one
// thread per element (rows along grid.y, columns along x) writes
// exp(z - lse) * scale, minus scale at the target column; each element is read
// and written by the same thread, so dlogits may overwrite the logits.
#include "ember/backend/cuda/cross_entropy_kernels.h"

#include <algorithm>

#include "ember/backend/cuda/block_reduce.cuh"

namespace ember::cuda {
namespace {

template <typename T, typename I, bool kWarp>
__global__ void ce_forward_kernel(const T* z, const I* t, int64_t ignore_index, acc_t<T>* loss, acc_t<T>* lse,
                                  int64_t N, int64_t C) {
  using A = acc_t<T>;
  RowGroup<kWarp> g;
  for (int64_t row = g.first; row < N; row += g.step) {
    const T* zr = z + row * C;
    A m = MaxOp<A>::init();
    for (int64_t c = g.lane; c < C; c += g.width) m = MaxOp<A>::combine(m, load(zr + c));
    m = group_allreduce<kWarp, A, MaxOp<A>>(m);
    A s = 0;
    for (int64_t c = g.lane; c < C; c += g.width) s += ::exp(load(zr + c) - m);
    s = group_allreduce<kWarp, A, SumOp<A>>(s);
    if (g.lane == 0) {
      const A l = m + ::log(s);
      lse[row] = l;
      const int64_t tn = int64_t(t[row]);
      loss[row] = tn == ignore_index ? A(0) : l - load(zr + tn);
    }
  }
}

template <typename A, typename T>
__global__ void ce_total_kernel(const A* rows, int64_t n, double divisor, T* loss) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += double(rows[i]);
  acc = block_allreduce<double, SumOp<double>>(acc);
  if (threadIdx.x == 0) store(loss, acc / divisor);
}

template <typename T, typename I>
__global__ void ce_backward_kernel(const T* z, const I* t, const acc_t<T>* lse, int64_t ignore_index, const T* g,
                                   bool per_row_g, acc_t<T> inv_div, T* dz, int64_t N, int64_t C) {
  using A = acc_t<T>;
  for (int64_t row = blockIdx.y; row < N; row += gridDim.y) {
    const T* zr = z + row * C;
    T* dr = dz + row * C;
    const int64_t tn = int64_t(t[row]);
    const bool ignored = tn == ignore_index;
    const A scale = load(g + (per_row_g ? row : 0)) * inv_div;
    const A l = lse[row];
    for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += int64_t(blockDim.x) * gridDim.x) {
      if (ignored) {
        store(dr + c, A(0));
      } else {
        const A p = ::exp(load(zr + c) - l);
        store(dr + c, c == tn ? (p - A(1)) * scale : p * scale);
      }
    }
  }
}

template <typename Fn>
void visit_targets(const Tensor& targets, Fn&& fn) {
  if (targets.dtype() == DType::i64) fn.template operator()<int64_t>();
  else if (targets.dtype() == DType::i32) fn.template operator()<int32_t>();
  else fail("cross_entropy", "targets must be int64 or int32, got ", dtype_name(targets.dtype()));
}

template <typename T, typename I>
void forward_typed(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& row_loss, Tensor& lse,
                   int64_t N, int64_t C) {
  using A = acc_t<T>;
  RowLaunch L = row_launch(N, C);
  if (L.warp)
    ce_forward_kernel<T, I, true><<<L.grid, L.block, 0, stream()>>>(
        data_of<T>(logits), data_of<I>(targets), ignore_index, data_of<A>(row_loss), data_of<A>(lse), N, C);
  else
    ce_forward_kernel<T, I, false><<<L.grid, L.block, 0, stream()>>>(
        data_of<T>(logits), data_of<I>(targets), ignore_index, data_of<A>(row_loss), data_of<A>(lse), N, C);
  check_launch("cross_entropy");
}

template <typename A, typename T>
void total_typed(const Tensor& row_loss, double divisor, Tensor& loss) {
  ce_total_kernel<A, T><<<1, 1024, 0, stream()>>>(data_of<A>(row_loss), row_loss.numel(), divisor, data_of<T>(loss));
  check_launch("cross_entropy");
}

template <typename T, typename I>
void backward_typed(const Tensor& logits, const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                    const Tensor& g, bool per_row_g, double divisor, Tensor& dlogits, int64_t N, int64_t C) {
  using A = acc_t<T>;
  const int64_t col_blocks = std::min<int64_t>((C + kThreads - 1) / kThreads, 64);
  dim3 grid(unsigned(col_blocks), unsigned(std::min<int64_t>(N, 65535)));
  ce_backward_kernel<T, I><<<grid, kThreads, 0, stream()>>>(data_of<T>(logits), data_of<I>(targets), data_of<A>(lse),
                                                            ignore_index, data_of<T>(g), per_row_g, A(1.0 / divisor),
                                                            data_of<T>(dlogits), N, C);
  check_launch("cross_entropy_backward");
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& row_loss,
                           Tensor& lse) {
  const int64_t N = targets.numel();
  const int64_t C = logits.shape().back();
  if (N == 0) return;
  visit_device_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    visit_targets(targets, [&]<typename I>() { forward_typed<T, I>(logits, targets, ignore_index, row_loss, lse, N, C); });
  });
}

void cross_entropy_total(const Tensor& row_loss, double divisor, Tensor& loss) {
  visit_device_floating(row_loss.dtype(), "cross_entropy", [&]<typename A>() {
    visit_device_floating(loss.dtype(), "cross_entropy", [&]<typename T>() {
      if constexpr (std::is_same_v<A, float> || std::is_same_v<A, double>) total_typed<A, T>(row_loss, divisor, loss);
      else fail("cross_entropy", "per-row losses must be float32 or float64");
    });
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                            const Tensor& g, bool per_row_g, double divisor, Tensor& dlogits) {
  const int64_t N = targets.numel();
  const int64_t C = logits.shape().back();
  if (N == 0 || C == 0) return;
  visit_device_floating(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    visit_targets(targets, [&]<typename I>() {
      backward_typed<T, I>(logits, targets, lse, ignore_index, g, per_row_g, divisor, dlogits, N, C);
    });
  });
}

}  // namespace ember::cuda
