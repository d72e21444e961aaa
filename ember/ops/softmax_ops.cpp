// softmax and log_softmax as fused primitives.
//
// Softmax runs one kernel per direction. Its vjp calls SoftmaxBackward, a fused
// primitive (dx from y and g in one pass) whose own vjp is written in ordinary
// ops, so second and higher derivatives work. When that vjp is recorded
// (create_graph) its y must depend on x: the engine re-links saved outputs to
// their node, and should y arrive unlinked anyway, it is rebuilt from x.
#include <algorithm>
#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/ops/primitive_registry.h"
#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/softmax_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#include "ember/backend/cuda/softmax_kernels.h"
#endif
#include "ember/ops/contiguous_data.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/nn_ops.h"
#include "ember/ops/reduce.h"

namespace ember {
namespace {

// [outer, n, inner] around `axis`.
struct AxisLayout {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisLayout axis_layout(const Shape& s, int axis) {
  AxisLayout L;
  for (int d = 0; d < int(s.size()); ++d) {
    if (d < axis) L.outer *= s[size_t(d)];
    else if (d == axis) L.n = s[size_t(d)];
    else L.inner *= s[size_t(d)];
  }
  return L;
}

const char* softmax_name(bool log) { return log ? "log_softmax" : "softmax"; }

class SoftmaxPrim final : public Primitive {
 public:
  SoftmaxPrim(int axis, bool log) : axis_(axis), log_(log) {}
  const char* name() const override { return softmax_name(log_); }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (!is_floating(in[0].dtype()))
      fail(name(), "expects a floating-point tensor, got ", dtype_name(in[0].dtype()));
    return {{in[0].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    AxisLayout L = axis_layout(in[0].shape(), axis_);
    cpu::softmax_forward(log_, contiguous_data(in[0]), L.outer, L.n, L.inner, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    AxisLayout L = axis_layout(in[0].shape(), axis_);
    cuda::softmax_forward(log_, contiguous_data(in[0]), L.outer, L.n, L.inner, out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>&) const override;

 private:
  int axis_;
  bool log_;
};

// Inputs (x, y, g): y = softmax(x) (or log_softmax) as saved by the forward pass,
// g the cotangent of y; output dx. x is only read by the vjp.
class SoftmaxBackwardPrim final : public Primitive {
 public:
  SoftmaxBackwardPrim(int axis, bool log) : axis_(axis), log_(log) {}
  const char* name() const override { return log_ ? "log_softmax_backward" : "softmax_backward"; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& y = in[1];
    const Tensor& g = in[2];
    if (g.shape() != y.shape() || g.dtype() != y.dtype())
      fail(name(), "gradient ", dtype_name(g.dtype()), " ", shape_str(g.shape()), " does not match output ",
           dtype_name(y.dtype()), " ", shape_str(y.shape()));
    return {{y.shape(), y.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    AxisLayout L = axis_layout(in[1].shape(), axis_);
    cpu::softmax_backward(log_, contiguous_data(in[1]), contiguous_data(in[2]), L.outer, L.n, L.inner, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    AxisLayout L = axis_layout(in[1].shape(), axis_);
    cuda::softmax_backward(log_, contiguous_data(in[1]), contiguous_data(in[2]), L.outer, L.n, L.inner, out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    // dx = B(y(x), g) is linear in g; u is the cotangent of dx.
    const Tensor& x = in[0];
    const Tensor& g = in[2];
    const Tensor& u = ct[0];
    // A 0-d tensor is its own (one-element) softmax axis; reduce over no axes then.
    std::vector<int64_t> ax = x.ndim() == 0 ? std::vector<int64_t>{} : std::vector<int64_t>{axis_};
    Tensor y = GradMode::enabled() && !in[1].requires_grad() ? (log_ ? log_softmax(x, axis_) : softmax(x, axis_))
                                                              : in[1];
    Tensor gx, gg;
    if (!log_) {
      // dx = y * (g - sum(g y)):  d/dg = y (u - sum(u y));  d/dy = u (g - sum(g y)) - g sum(u y).
      Tensor uy = u * y;
      Tensor s_uy = sum(uy, ax, true);
      if (needs[2]) gg = uy - y * s_uy;
      if (needs[0]) {
        Tensor gy = u * (g - sum(g * y, ax, true)) - g * s_uy;
        gx = apply1(std::make_shared<SoftmaxBackwardPrim>(axis_, log_), {x, y, gy});
      }
    } else {
      // dx = g - p sum(g), p = exp(y):  d/dg = u - sum(u p);  d/dy = -u p sum(g).
      Tensor p = exp(y);
      if (needs[2]) gg = u - sum(u * p, ax, true);
      if (needs[0]) {
        Tensor gy = neg(u * p * sum(g, ax, true));
        gx = apply1(std::make_shared<SoftmaxBackwardPrim>(axis_, log_), {x, y, gy});
      }
    }
    return {gx, Tensor(), gg};
  }

 private:
  int axis_;
  bool log_;
};

std::vector<Tensor> SoftmaxPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                                     const std::vector<Tensor>& ct, const std::vector<bool>&) const {
  return {apply1(std::make_shared<SoftmaxBackwardPrim>(axis_, log_), {in[0], out[0], ct[0]})};
}

Tensor softmax_impl(const Tensor& x, int64_t axis, bool log) {
  if (!x.defined()) fail(softmax_name(log), "input is an undefined tensor");
  // A 0-d tensor accepts axis 0 or -1, as in PyTorch.
  int a = normalize_axis(axis, std::max<int64_t>(x.ndim(), 1), softmax_name(log));
  return apply1(make_prim<SoftmaxPrim>(a, log), {x});
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_impl(x, axis, false); }
Tensor log_softmax(const Tensor& x, int64_t axis) { return softmax_impl(x, axis, true); }

void register_softmax_primitives(PrimitiveRegistry& r) {
  for (bool log : {false, true}) {
    const std::string name = softmax_name(log);
    r.add(name, {1, 1}, [log, name](const Attrs& a) { return make_prim<SoftmaxPrim>(int(attr_int(a, "axis", name)), log); });
  }
}

}  // namespace ember
