// The AdamW and SGD update primitives and their CPU kernels.
//
// The kernels are one flat loop over contiguous memory split across OpenMP
// threads and vectorised (AVX2/AVX-512): SGD by the compiler, AdamW with
// std::experimental::simd (see adamw_range for why).
// Expressions follow PyTorch's CPU kernels operation by operation (lerp for m,
// addcmul for v, addcdiv for p), so float32 results match PyTorch's to rounding.
#include "ember/optim/fused_updates.h"

#include <cmath>
// GCC 12 reports that std::experimental::sqrt's AVX-512 form reads an
// uninitialised vector: it is _mm512_undefined_ps(), the masked intrinsic's
// deliberately undefined pass-through, which an all-ones mask never reads (a
// known false positive; GCC bug 105593). It shows wherever adamw_range is
// inlined, so it is silenced for this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <experimental/simd>

#include "ember/autograd/grad_mode.h"
#include "ember/backend/cpu/loops.h"
#include "ember/ops/dispatch.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/optim_kernels.h"
#endif

namespace ember::optim {
namespace {

namespace stdx = std::experimental;

// Enough work per thread that the fork/join cost disappears.
constexpr int64_t kGrain = 1 << 16;

// The state is float for 16-bit parameters (their arithmetic is float anyway).
template <typename P> using state_t = std::conditional_t<std::is_same_v<P, double>, double, float>;

// The per-step constants of the AdamW update, in the state's precision.
template <typename S>
struct AdamWConsts {
  S decay, w1, b2, w2, neg_step_size, bc2_sqrt, eps;
};

// Loads W consecutive P values as a simd of S (a plain vector load when P == S).
template <typename V, typename P>
V load_as(const P* x) {
  if constexpr (std::is_same_v<P, typename V::value_type>) return V(x, stdx::element_aligned);
  else return V([x](auto j) { return typename V::value_type(x[j]); });
}

template <typename V, typename P>
void store_as(const V& value, P* x) {
  if constexpr (std::is_same_v<P, typename V::value_type>) {
    value.copy_to(x, stdx::element_aligned);
  } else {
    for (size_t j = 0; j < V::size(); ++j) x[j] = P(value[j]);
  }
}

// The loop uses explicit SIMD because std::sqrt may set errno: GCC then keeps a
// branch in the loop and refuses to vectorise it under -fmath-errno (the
// default; `#pragma GCC optimize("no-math-errno")` does not change that).
template <typename P>
void adamw_range(P* __restrict p, const P* __restrict g, state_t<P>* __restrict m, state_t<P>* __restrict v,
                 int64_t begin, int64_t end, const AdamWConsts<state_t<P>>& k) {
  using S = state_t<P>;
  using V = stdx::native_simd<S>;
  constexpr int64_t W = int64_t(V::size());
  int64_t i = begin;
  for (; i + W <= end; i += W) {
    V pi = load_as<V>(p + i) * k.decay;
    V gi = load_as<V>(g + i);
    V mi = load_as<V>(m + i);
    V vi = load_as<V>(v + i);
    mi = mi + k.w1 * (gi - mi);
    vi = vi * k.b2 + k.w2 * gi * gi;
    V denom = stdx::sqrt(vi) / k.bc2_sqrt + k.eps;
    pi = pi + k.neg_step_size * mi / denom;
    store_as(mi, m + i);
    store_as(vi, v + i);
    store_as(pi, p + i);
  }
  for (; i < end; ++i) {
    S pi = S(p[i]) * k.decay;
    S gi = S(g[i]);
    S mi = m[i] + k.w1 * (gi - m[i]);
    S vi = v[i] * k.b2 + k.w2 * gi * gi;
    S denom = std::sqrt(vi) / k.bc2_sqrt + k.eps;
    pi = pi + k.neg_step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
    p[i] = P(pi);
  }
}

// The constants in double; each device rounds them to the state's precision.
struct AdamWConstsF64 {
  double decay, w1, b2, w2, neg_step_size, bc2_sqrt, eps;
};
AdamWConstsF64 adamw_consts(const AdamWHyper& h) {
  const double bc1 = 1.0 - std::pow(h.beta1, double(h.step));
  const double bc2 = 1.0 - std::pow(h.beta2, double(h.step));
  return {1.0 - h.lr * h.weight_decay, 1.0 - h.beta1 /* lerp weight */, h.beta2, 1.0 - h.beta2, -(h.lr / bc1),
          std::sqrt(bc2), h.eps};
}

template <typename P>
void adamw_kernel(P* p, const P* g, state_t<P>* m, state_t<P>* v, int64_t n, const AdamWHyper& h) {
  using S = state_t<P>;
  const AdamWConstsF64 c = adamw_consts(h);
  AdamWConsts<S> k;
  k.decay = S(c.decay);
  k.w1 = S(c.w1);
  k.b2 = S(c.b2);
  k.w2 = S(c.w2);
  k.neg_step_size = S(c.neg_step_size);
  k.bc2_sqrt = S(c.bc2_sqrt);
  k.eps = S(c.eps);
  cpu::parallel_for(n, kGrain, [&](int64_t begin, int64_t end) { adamw_range<P>(p, g, m, v, begin, end, k); });
}

template <typename P>
void sgd_kernel(P* __restrict p, const P* __restrict g, state_t<P>* __restrict buf, int64_t n, const SGDHyper& h) {
  using S = state_t<P>;
  const S wd = S(h.weight_decay);
  const S neg_lr = S(-h.lr);
  const S mom = S(h.momentum);
  const S keep = S(1.0 - h.dampening);
  const bool first = h.first_step, nesterov = h.nesterov;
  cpu::parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    if (!buf) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        S pi = S(p[i]);
        S d = S(g[i]) + wd * pi;
        p[i] = P(pi + neg_lr * d);
      }
      return;
    }
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      S pi = S(p[i]);
      S d = S(g[i]) + wd * pi;
      S b = first ? d : buf[i] * mom + keep * d;
      buf[i] = b;
      d = nesterov ? d + mom * b : b;
      p[i] = P(pi + neg_lr * d);
    }
  });
}

void check_same(const std::vector<Tensor>& in, const char* op, const std::vector<const char*>& names) {
  const Tensor& p = in[0];
  if (!is_floating(p.dtype())) fail(op, "parameter must be floating-point, got ", dtype_name(p.dtype()));
  if (in[1].dtype() != p.dtype())
    fail(op, "gradient dtype ", dtype_name(in[1].dtype()), " differs from parameter dtype ", dtype_name(p.dtype()));
  DType sdt = optimizer_state_dtype(p.dtype());
  for (size_t k = 1; k < in.size(); ++k) {
    if (in[k].shape() != p.shape())
      fail(op, names[k], " shape ", shape_str(in[k].shape()), " differs from parameter shape ", shape_str(p.shape()));
    if (!in[k].is_contiguous()) fail(op, names[k], " must be contiguous");
    if (k >= 2 && in[k].dtype() != sdt)
      fail(op, names[k], " must be ", dtype_name(sdt), " for a ", dtype_name(p.dtype()), " parameter, got ",
           dtype_name(in[k].dtype()));
  }
}

// Run functionally (a compiled graph that could not compute an update in the
// tensors' own bytes, or a replay through eager ops), an update gets fresh
// outputs: they start as copies of the tensors they replace.
void copy_unless_aliased(const Tensor& from, const Tensor& to) {
  if (from.raw_data() != to.raw_data()) copy_bytes(to, from);
}

// With `dynamic`, the learning rate and step come from a fifth input at run
// time (float64 [2]: lr, step), so a compiled training step reads the current
// schedule and counts its own steps instead of baking in those of its trace.
class AdamWPrim final : public Primitive {
 public:
  AdamWPrim(const AdamWHyper& h, bool dynamic) : h_(h), dynamic_(dynamic) {}
  const char* name() const override { return "adamw_update"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override {
    if (dynamic_)
      return {{"beta1", h_.beta1}, {"beta2", h_.beta2}, {"eps", h_.eps}, {"weight_decay", h_.weight_decay}};
    return {{"lr", h_.lr}, {"beta1", h_.beta1}, {"beta2", h_.beta2}, {"eps", h_.eps},
            {"weight_decay", h_.weight_decay}, {"step", h_.step}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const size_t want = dynamic_ ? 5 : 4;
    if (in.size() != want)
      fail(name(), "expects param, grad, exp_avg, exp_avg_sq", dynamic_ ? ", hyper" : "", "; got ", in.size(),
           " inputs");
    check_same({in[0], in[1], in[2], in[3]}, name(), {"param", "gradient", "exp_avg", "exp_avg_sq"});
    if (dynamic_ && (in[4].dtype() != DType::f64 || in[4].shape() != Shape{2} || in[4].device() != in[0].device()))
      fail(name(), "hyper must be a float64 [2] tensor (lr, step) on the parameter's device (",
           in[0].device().str(), "), got ", dtype_name(in[4].dtype()), " ", shape_str(in[4].shape()), " on ",
           in[4].device().str());
    return {{in[0].shape(), in[0].dtype()}, {in[2].shape(), in[2].dtype()}, {in[3].shape(), in[3].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    AdamWHyper h = hyper(in);
    copy_unless_aliased(in[0], out[0]);
    copy_unless_aliased(in[2], out[1]);
    copy_unless_aliased(in[3], out[2]);
    visit_floating(in[0].dtype(), name(), [&]<typename P>() {
      using S = state_t<P>;
      adamw_kernel<P>(static_cast<P*>(out[0].raw_data()), static_cast<const P*>(in[1].raw_data()),
                      static_cast<S*>(out[1].raw_data()), static_cast<S*>(out[2].raw_data()), in[0].numel(), h);
    });
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    copy_unless_aliased(in[0], out[0]);
    copy_unless_aliased(in[2], out[1]);
    copy_unless_aliased(in[3], out[2]);
    if (dynamic_) {  // lr and step stay on the device: no copy to the host per update
      cuda::adamw_update_dynamic(out[0], in[1], out[1], out[2], in[4], {h_.beta1, h_.beta2, h_.eps, h_.weight_decay});
      return;
    }
    const AdamWConstsF64 c = adamw_consts(h_);
    cuda::adamw_update(out[0], in[1], out[1], out[2],
                       {c.decay, c.w1, c.b2, c.w2, c.neg_step_size, c.bc2_sqrt, c.eps});
  }
#endif

 private:
  // The hyperparameters of a CPU call: lr and step from the tensor `hyper`
  // (on the CPU, as the parameters) when dynamic.
  AdamWHyper hyper(const std::vector<Tensor>& in) const {
    AdamWHyper h = h_;
    if (dynamic_) {
      const double* values = static_cast<const double*>(in[4].raw_data());
      h.lr = values[0];
      h.step = int64_t(values[1]);
      if (h.step < 1) fail(name(), "step must be >= 1, got ", values[1]);
    }
    return h;
  }

  AdamWHyper h_;
  bool dynamic_;
};

class SGDPrim final : public Primitive {
 public:
  explicit SGDPrim(const SGDHyper& h) : h_(h) {}
  const char* name() const override { return "sgd_update"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override {
    return {{"lr", h_.lr},
            {"momentum", h_.momentum},
            {"dampening", h_.dampening},
            {"weight_decay", h_.weight_decay},
            {"nesterov", int64_t(h_.nesterov)},
            {"first_step", int64_t(h_.first_step)}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    size_t want = h_.momentum != 0.0 ? 3 : 2;
    if (in.size() != want)
      fail(name(), "expects ", want == 3 ? "param, grad, momentum_buffer" : "param, grad", "; got ", in.size(),
           " inputs");
    check_same(in, name(), {"param", "gradient", "momentum_buffer"});
    std::vector<TensorSpec> specs{{in[0].shape(), in[0].dtype()}};
    if (want == 3) specs.push_back({in[2].shape(), in[2].dtype()});
    return specs;
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    copy_unless_aliased(in[0], out[0]);
    if (out.size() > 1) copy_unless_aliased(in[2], out[1]);
    visit_floating(in[0].dtype(), name(), [&]<typename P>() {
      using S = state_t<P>;
      S* buf = out.size() > 1 ? static_cast<S*>(out[1].raw_data()) : nullptr;
      sgd_kernel<P>(static_cast<P*>(out[0].raw_data()), static_cast<const P*>(in[1].raw_data()), buf,
                    in[0].numel(), h_);
    });
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    copy_unless_aliased(in[0], out[0]);
    if (out.size() > 1) copy_unless_aliased(in[2], out[1]);
    Tensor buf = out.size() > 1 ? out[1] : Tensor();
    cuda::sgd_update(out[0], in[1], buf,
                     {h_.lr, h_.momentum, h_.dampening, h_.weight_decay, h_.nesterov, h_.first_step});
  }
#endif

 private:
  SGDHyper h_;
};

void check_param(const Tensor& param, const Tensor& grad, const char* op) {
  EMBER_CHECK(param.defined() && grad.defined(), op, "got an undefined parameter or gradient");
  EMBER_CHECK(param.is_contiguous(), op, "parameter of shape ", shape_str(param.shape()), " must be contiguous");
}

}  // namespace

DType optimizer_state_dtype(DType param_dtype) {
  if (param_dtype == DType::bf16 || param_dtype == DType::f16) return DType::f32;
  return param_dtype;
}

void adamw_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                   const AdamWHyper& h) {
  check_param(param, grad, "adamw_update");
  EMBER_CHECK(h.step >= 1, "adamw_update", "step must be >= 1, got ", h.step);
  NoGradGuard no_grad;
  std::vector<Tensor> out{param, exp_avg, exp_avg_sq};
  apply_into(make_prim<AdamWPrim>(h, false), {param, grad, exp_avg, exp_avg_sq}, out);
}

void adamw_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                   const AdamWHyper& h, const Tensor& hyper) {
  check_param(param, grad, "adamw_update");
  NoGradGuard no_grad;
  std::vector<Tensor> out{param, exp_avg, exp_avg_sq};
  apply_into(make_prim<AdamWPrim>(h, true), {param, grad, exp_avg, exp_avg_sq, hyper}, out);
}

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDHyper& h) {
  check_param(param, grad, "sgd_update");
  NoGradGuard no_grad;
  std::vector<Tensor> out{param};
  std::vector<Tensor> in{param, grad};
  if (h.momentum != 0.0) {
    EMBER_CHECK(momentum_buffer.defined(), "sgd_update", "momentum ", h.momentum, " needs a momentum buffer");
    in.push_back(momentum_buffer);
    out.push_back(momentum_buffer);
  }
  apply_into(make_prim<SGDPrim>(h), in, out);
}

}  // namespace ember::optim
