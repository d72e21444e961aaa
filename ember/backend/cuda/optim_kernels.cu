// CUDA optimizer kernels: the AdamW and SGD updates are one grid-stride pass
// over the elements, each thread reading and writing its own parameter and
// state (the expressions of the CPU's scalar loop, in the state's precision);
// the power sum is two passes: blocks reduce strided slices into double
// partials, then one block combines them in order (deterministic).
#include "ember/backend/cuda/optim_kernels.h"

#include <algorithm>
#include <cmath>

#include "ember/backend/cuda/block_reduce.cuh"

namespace ember::cuda {
namespace {

template <typename P> using state_t = std::conditional_t<std::is_same_v<P, double>, double, float>;

// One element of the AdamW update, the CPU's scalar expressions.
template <typename P, typename S>
__device__ __forceinline__ void adamw_element(P* p, const P* g, S* m, S* v, int64_t i, S decay, S w1, S b2, S w2,
                                              S neg_step_size, S bc2_sqrt, S eps) {
  S pi = S(load(p + i)) * decay;
  const S gi = S(load(g + i));
  const S mi = m[i] + w1 * (gi - m[i]);
  const S vi = v[i] * b2 + w2 * gi * gi;
  const S denom = ::sqrt(vi) / bc2_sqrt + eps;
  pi = pi + neg_step_size * mi / denom;
  m[i] = mi;
  v[i] = vi;
  store(p + i, pi);
}

template <typename P>
__global__ void adamw_kernel(P* p, const P* g, state_t<P>* m, state_t<P>* v, int64_t n, state_t<P> decay,
                             state_t<P> w1, state_t<P> b2, state_t<P> w2, state_t<P> neg_step_size,
                             state_t<P> bc2_sqrt, state_t<P> eps) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    adamw_element(p, g, m, v, i, decay, w1, b2, w2, neg_step_size, bc2_sqrt, eps);
}

// adamw_kernel with lr and step read from `hyper` on the device: one thread
// of each block derives the constants (float64, the CPU's formulas in
// fused_updates.cpp), the block shares them.
template <typename P>
__global__ void adamw_dynamic_kernel(P* p, const P* g, state_t<P>* m, state_t<P>* v, int64_t n, const double* hyper,
                                     double beta1, double beta2, double eps, double weight_decay) {
  using S = state_t<P>;
  __shared__ S c[6];  // decay, w1, b2, w2, neg_step_size, bc2_sqrt
  if (threadIdx.x == 0) {
    // The step as the CPU reads it (a whole number); a count below 1, which a
    // traced step never writes (it adds one before the update), makes the
    // update NaN, which the trainer's non-finite check reports, rather than a
    // silent -inf step size.
    const double lr = hyper[0], step = ::floor(hyper[1]);
    const double bc1 = step >= 1 ? 1.0 - ::pow(beta1, step) : ::nan(""), bc2 = 1.0 - ::pow(beta2, step);
    c[0] = S(1.0 - lr * weight_decay);
    c[1] = S(1.0 - beta1);
    c[2] = S(beta2);
    c[3] = S(1.0 - beta2);
    c[4] = S(-(lr / bc1));
    c[5] = S(::sqrt(bc2));
  }
  __syncthreads();
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    adamw_element(p, g, m, v, i, c[0], c[1], c[2], c[3], c[4], c[5], S(eps));
}

template <typename P>
__global__ void sgd_kernel(P* p, const P* g, state_t<P>* buf, int64_t n, state_t<P> wd, state_t<P> neg_lr,
                           state_t<P> mom, state_t<P> keep, bool first, bool nesterov) {
  using S = state_t<P>;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const S pi = S(load(p + i));
    S d = S(load(g + i)) + wd * pi;
    if (buf) {
      const S b = first ? d : buf[i] * mom + keep * d;
      buf[i] = b;
      d = nesterov ? d + mom * b : b;
    }
    store(p + i, pi + neg_lr * d);
  }
}

// max |x| that lets a NaN win, starting from 0 (the CPU's fold).
struct AbsMaxOp {
  static __device__ __forceinline__ double init() { return 0.0; }
  static __device__ __forceinline__ double combine(double a, double b) { return (b > a || b != b) ? b : a; }
};

enum class PowerKind { two, inf, other };

template <typename T, PowerKind K>
__device__ __forceinline__ double power_term(const T* x, int64_t i, double p) {
  const double v = double(load(x + i));
  if constexpr (K == PowerKind::two) return v * v;
  else if constexpr (K == PowerKind::inf) return ::fabs(v);
  else return ::pow(::fabs(v), p);
}

template <typename T, PowerKind K>
__global__ void power_partial_kernel(const T* x, int64_t n, double p, double* partial) {
  using Op = std::conditional_t<K == PowerKind::inf, AbsMaxOp, SumOp<double>>;
  double acc = Op::init();
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    acc = Op::combine(acc, power_term<T, K>(x, i, p));
  acc = block_allreduce<double, Op>(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <PowerKind K>
__global__ void power_final_kernel(const double* partial, int64_t n, double* out) {
  using Op = std::conditional_t<K == PowerKind::inf, AbsMaxOp, SumOp<double>>;
  double acc = Op::init();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc = Op::combine(acc, partial[i]);
  acc = block_allreduce<double, Op>(acc);
  if (threadIdx.x == 0) *out = acc;
}

template <typename T, PowerKind K>
void power_typed(const Tensor& x, double p, Tensor& out) {
  const int64_t n = x.numel();
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((n + kThreads * 8 - 1) / (kThreads * 8), 1024));
  Tensor partial = Tensor::empty({blocks}, DType::f64, x.device());
  power_partial_kernel<T, K><<<unsigned(blocks), kThreads, 0, stream()>>>(data_of<T>(x), n, p, data_of<double>(partial));
  check_launch("grad_norm");
  power_final_kernel<K><<<1, 1024, 0, stream()>>>(data_of<double>(partial), blocks, data_of<double>(out));
  check_launch("grad_norm");
}

template <typename P>
void adamw_typed(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const AdamWConstants& k) {
  using S = state_t<P>;
  const int64_t n = param.numel();
  adamw_kernel<P><<<grid_for(n), kThreads, 0, stream()>>>(
      data_of<P>(param), data_of<P>(grad), data_of<S>(exp_avg), data_of<S>(exp_avg_sq), n, S(k.decay), S(k.w1),
      S(k.b2), S(k.w2), S(k.neg_step_size), S(k.bc2_sqrt), S(k.eps));
  check_launch("adamw_update");
}

template <typename P>
void adamw_dynamic_typed(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const Tensor& hyper,
                         const AdamWStatic& k) {
  using S = state_t<P>;
  const int64_t n = param.numel();
  adamw_dynamic_kernel<P><<<grid_for(n), kThreads, 0, stream()>>>(
      data_of<P>(param), data_of<P>(grad), data_of<S>(exp_avg), data_of<S>(exp_avg_sq), n, data_of<double>(hyper),
      k.beta1, k.beta2, k.eps, k.weight_decay);
  check_launch("adamw_update");
}

template <typename P>
void sgd_typed(Tensor& param, const Tensor& grad, Tensor& buf, const SGDConstants& k) {
  using S = state_t<P>;
  const int64_t n = param.numel();
  sgd_kernel<P><<<grid_for(n), kThreads, 0, stream()>>>(data_of<P>(param), data_of<P>(grad),
                                                        buf.defined() ? data_of<S>(buf) : nullptr, n,
                                                        S(k.weight_decay), S(-k.lr), S(k.momentum),
                                                        S(1.0 - k.dampening), k.first_step, k.nesterov);
  check_launch("sgd_update");
}

}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const AdamWConstants& k) {
  if (param.numel() == 0) return;
  visit_device_floating(param.dtype(), "adamw_update",
                        [&]<typename P>() { adamw_typed<P>(param, grad, exp_avg, exp_avg_sq, k); });
}

void adamw_update_dynamic(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const Tensor& hyper,
                          const AdamWStatic& k) {
  if (param.numel() == 0) return;
  if (hyper.dtype() != DType::f64 || hyper.numel() != 2 || hyper.device() != param.device())
    fail("adamw_update", "hyper must be a float64 [2] tensor (lr, step) on ", param.device().str(), ", got ",
         dtype_name(hyper.dtype()), " of ", hyper.numel(), " values on ", hyper.device().str());
  visit_device_floating(param.dtype(), "adamw_update", [&]<typename P>() {
    adamw_dynamic_typed<P>(param, grad, exp_avg, exp_avg_sq, hyper, k);
  });
}

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, const SGDConstants& k) {
  if (param.numel() == 0) return;
  visit_device_floating(param.dtype(), "sgd_update", [&]<typename P>() { sgd_typed<P>(param, grad, momentum_buffer, k); });
}

void power_sum(const Tensor& x, double p, Tensor& out) {
  visit_device_floating(x.dtype(), "grad_norm", [&]<typename T>() {
    if (std::isinf(p)) power_typed<T, PowerKind::inf>(x, p, out);
    else if (p == 2.0) power_typed<T, PowerKind::two>(x, p, out);
    else power_typed<T, PowerKind::other>(x, p, out);
  });
}

}  // namespace ember::cuda
