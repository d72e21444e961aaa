// layer_norm and rms_norm over the last dimension as fused primitives.
//
// The forward primitive also outputs the per-row statistics (mean and 1/std, in
// float32 or float64) so that NormBackward computes dx, dweight and dbias in one
// pass without recomputing them. NormBackward's own vjp (for second and higher
// derivatives) is the reverse-mode derivative of the composite backward formula,
// written out below in ordinary ops; it recomputes the statistics from x so
// that their dependence on x is part of the graph.
#include <cmath>

#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/ops/primitive_registry.h"
#include "ember/backend/cpu/norm_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#include "ember/backend/cuda/norm_kernels.h"
#endif
#include "ember/ops/contiguous_data.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/nn_ops.h"
#include "ember/ops/reduce.h"
#include "ember/ops/shape_ops.h"

namespace ember {
namespace {

DType stats_dtype(DType x) { return x == DType::f64 ? DType::f64 : DType::f32; }
const char* norm_name(bool rms) { return rms ? "rms_norm" : "layer_norm"; }

// Adds v into an accumulator that may still be undefined.
void accumulate(Tensor& slot, const Tensor& v) { slot = slot.defined() ? slot + v : v; }

// Inputs: x [..., C], then weight [C] and bias [C] when present.
// Outputs: y, then mean (layer norm only) and rstd, both x.shape[:-1].
class NormPrim final : public Primitive {
 public:
  NormPrim(bool rms, double eps, bool has_weight, bool has_bias)
      : rms_(rms), eps_(eps), has_weight_(has_weight), has_bias_(has_bias) {}
  const char* name() const override { return norm_name(rms_); }
  Attrs attrs() const override {
    return {{"eps", eps_}, {"weight", int64_t(has_weight_)}, {"bias", int64_t(has_bias_)}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const size_t want = 1 + size_t(has_weight_) + size_t(has_bias_);
    if (in.size() != want)  // a saved graph's node may list any inputs
      fail(name(), "expects ", want, " inputs (x", has_weight_ ? ", weight" : "", has_bias_ ? ", bias" : "", "), got ",
           in.size());
    const Tensor& x = in[0];
    if (!is_floating(x.dtype())) fail(name(), "expects a floating-point tensor, got ", dtype_name(x.dtype()));
    if (x.ndim() == 0) fail(name(), "expects a tensor with at least one dimension");
    for (size_t i = 1; i < in.size(); ++i) {
      const char* what = i == 1 && has_weight_ ? "weight" : "bias";
      if (in[i].shape() != Shape{x.shape().back()})
        fail(name(), what, " shape ", shape_str(in[i].shape()), " does not match the normalised dimension [",
             x.shape().back(), "] of input ", shape_str(x.shape()));
      if (in[i].dtype() != x.dtype())
        fail(name(), what, " dtype ", dtype_name(in[i].dtype()), " differs from input dtype ", dtype_name(x.dtype()));
    }
    Shape rows(x.shape().begin(), x.shape().end() - 1);
    std::vector<TensorSpec> specs{{x.shape(), x.dtype()}};
    if (!rms_) specs.push_back({rows, stats_dtype(x.dtype())});
    specs.push_back({rows, stats_dtype(x.dtype())});
    return specs;
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Tensor w = has_weight_ ? contiguous_data(in[1]) : Tensor();
    Tensor b = has_bias_ ? contiguous_data(in[has_weight_ ? 2 : 1]) : Tensor();
    Tensor mean = rms_ ? Tensor() : out[1];
    cpu::norm_forward(rms_, contiguous_data(in[0]), w, b, eps_, out[0], mean, out.back());
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Tensor w = has_weight_ ? contiguous_data(in[1]) : Tensor();
    Tensor b = has_bias_ ? contiguous_data(in[has_weight_ ? 2 : 1]) : Tensor();
    Tensor mean = rms_ ? Tensor() : out[1];
    cuda::norm_forward(rms_, contiguous_data(in[0]), w, b, eps_, out[0], mean, out.back());
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>& needs) const override;

 private:
  bool rms_;
  double eps_;
  bool has_weight_, has_bias_;
};

// Inputs: x, [weight], [mean] (layer norm), rstd, g. Outputs: dx, [dweight], [dbias].
class NormBackwardPrim final : public Primitive {
 public:
  NormBackwardPrim(bool rms, double eps, bool has_weight, bool want_dw, bool want_db)
      : rms_(rms), eps_(eps), has_weight_(has_weight), want_dw_(want_dw), want_db_(want_db) {}
  const char* name() const override { return rms_ ? "rms_norm_backward" : "layer_norm_backward"; }
  Attrs attrs() const override {
    return {{"eps", eps_}, {"weight", int64_t(has_weight_)}, {"dweight", int64_t(want_dw_)},
            {"dbias", int64_t(want_db_)}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& x = in[0];
    const Tensor& g = in.back();
    if (g.shape() != x.shape() || g.dtype() != x.dtype())
      fail(name(), "gradient ", dtype_name(g.dtype()), " ", shape_str(g.shape()), " does not match input ",
           dtype_name(x.dtype()), " ", shape_str(x.shape()));
    std::vector<TensorSpec> specs{{x.shape(), x.dtype()}};
    Shape c{x.shape().back()};
    if (want_dw_) specs.push_back({c, x.dtype()});
    if (want_db_) specs.push_back({c, x.dtype()});
    return specs;
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    run(in, out, cpu::norm_backward);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    run(in, out, cuda::norm_backward);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>& needs) const override;

 private:
  // Unpacks the optional inputs and outputs for one backend's kernel.
  template <typename Kernel>
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out, Kernel kernel) const {
    size_t i = 1;
    Tensor w = has_weight_ ? contiguous_data(in[i++]) : Tensor();
    Tensor mean = rms_ ? Tensor() : contiguous_data(in[i++]);
    Tensor rstd = contiguous_data(in[i++]);
    Tensor dw = want_dw_ ? out[1] : Tensor();
    Tensor db = want_db_ ? out[want_dw_ ? 2 : 1] : Tensor();
    kernel(rms_, contiguous_data(in[0]), w, mean, rstd, contiguous_data(in.back()), out[0], dw, db);
  }

  bool rms_;
  double eps_;
  bool has_weight_, want_dw_, want_db_;
};

std::vector<Tensor> NormPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                                  const std::vector<Tensor>& ct, const std::vector<bool>& needs) const {
  std::vector<Tensor> grads(in.size());
  if (!ct[0].defined()) return grads;  // only the statistics received gradients: they are internal
  bool want_dw = has_weight_ && needs[1];
  bool want_db = has_bias_ && needs[has_weight_ ? 2 : 1];
  std::vector<Tensor> bin{in[0]};
  if (has_weight_) bin.push_back(in[1]);
  if (!rms_) bin.push_back(out[1]);
  bin.push_back(out.back());
  bin.push_back(ct[0]);
  std::vector<Tensor> r =
      ember::apply(std::make_shared<NormBackwardPrim>(rms_, eps_, has_weight_, want_dw, want_db), bin);
  grads[0] = r[0];
  if (want_dw) grads[1] = r[1];
  if (want_db) grads[has_weight_ ? 2 : 1] = r[want_dw ? 2 : 1];
  return grads;
}

// Reverse mode through the composite backward:
//   mu = mean(x), xc = x - mu, v = mean(xc^2), r = (v + eps)^-1/2, xhat = xc r
//   gw = g w, a = mean(gw), c = mean(gw xhat)
//   dx = r (gw - a - xhat c),  dw = sum_rows(g xhat),  db = sum_rows(g)
// (rms norm: mu = 0 and no a term). Cotangents u_* flow back through each line.
std::vector<Tensor> NormBackwardPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&,
                                          const std::vector<Tensor>& ct, const std::vector<bool>& needs) const {
  const Tensor& x = in[0];
  const Tensor w = has_weight_ ? in[1] : Tensor();
  const Tensor& g = in.back();
  const Tensor& ux = ct[0];
  const Tensor uw = want_dw_ ? ct[1] : Tensor();
  const Tensor ub = want_db_ ? ct[want_dw_ ? 2 : 1] : Tensor();
  const std::vector<int64_t> last{-1};
  const double n = double(x.shape().back());

  Tensor xc = rms_ ? x : x - mean(x, last, true);
  Tensor r = rsqrt(mean(xc * xc, last, true) + eps_);
  Tensor xhat = xc * r;
  Tensor gw = has_weight_ ? g * w : g;

  Tensor u_g, u_xhat, u_gw, u_r;
  if (uw.defined()) {
    accumulate(u_g, uw * xhat);
    accumulate(u_xhat, g * uw);
  }
  if (ub.defined()) accumulate(u_g, broadcast_to(ub, x.shape()));
  if (ux.defined()) {
    Tensor c = mean(gw * xhat, last, true);
    Tensor core = gw - xhat * c;
    if (!rms_) core = core - mean(gw, last, true);
    accumulate(u_r, sum(ux * core, last, true));
    Tensor rux = r * ux;
    Tensor u_c = neg(sum(rux * xhat, last, true));
    accumulate(u_gw, rux + u_c * xhat / n);
    if (!rms_) accumulate(u_gw, neg(sum(rux, last, true)) / n);
    accumulate(u_xhat, u_c * gw / n - c * rux);
  }
  if (u_gw.defined()) accumulate(u_g, has_weight_ ? u_gw * w : u_gw);

  std::vector<Tensor> grads(in.size());
  if (needs[0] && (u_xhat.defined() || u_r.defined())) {
    Tensor u_xc;
    if (u_xhat.defined()) {
      u_xc = u_xhat * r;
      accumulate(u_r, sum(u_xhat * xc, last, true));
    }
    // r = (v + eps)^-1/2 and v = mean(xc^2): dv = -r^3 / 2, dxc = 2 xc / n.
    accumulate(u_xc, u_r * (-1.0 / n) * r * r * r * xc);
    grads[0] = rms_ ? u_xc : u_xc - mean(u_xc, last, true);
  }
  if (has_weight_ && needs[1] && u_gw.defined()) grads[1] = u_gw * g;  // the engine sums it down to [C]
  if (needs.back() && u_g.defined()) grads.back() = u_g;
  return grads;
}

Tensor norm_impl(bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = norm_name(rms);
  if (!x.defined()) fail(op, "input is an undefined tensor");
  if (!(eps >= 0)) fail(op, "eps must be a non-negative number, got ", eps);
  std::vector<Tensor> in{x};
  if (weight.defined()) in.push_back(weight);
  if (bias.defined()) in.push_back(bias);
  return ember::apply(make_prim<NormPrim>(rms, eps, weight.defined(), bias.defined()), in)[0];
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  return norm_impl(false, x, weight, bias, eps);
}
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) { return norm_impl(true, x, weight, Tensor(), eps); }

void register_norm_primitives(PrimitiveRegistry& r) {
  for (bool rms : {false, true}) {
    const std::string name = norm_name(rms);
    r.add(name, {1, 3}, [rms, name](const Attrs& a) {
      return make_prim<NormPrim>(rms, attr_double(a, "eps", name), attr_int(a, "weight", name) != 0,
                                 attr_int(a, "bias", name) != 0);
    });
  }
}

}  // namespace ember
