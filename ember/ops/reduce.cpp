// Reduction primitives (sum, max, min, prod; argmax, argmin) and the composite
// reductions built on them (mean, var, logsumexp).
#include "ember/ops/reduce.h"
#include "ember/ops/primitive_registry.h"

#include <algorithm>
#include <cmath>

#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/reduce_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#include "ember/backend/cuda/reduce_kernels.h"
#endif
#include "ember/ops/creation.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/shape_ops.h"

namespace ember {
namespace {

// Views `x` as contiguous [outer, reduce, inner] for the given sorted axes,
// copying (with the reduced axes moved last, by `copy`: the strided copy of the
// tensor's device) when they are not one block of a contiguous tensor.
struct ReduceLayout {
  Tensor data;
  int64_t outer = 1, reduce = 1, inner = 1;
};

using CopyFn = void (*)(const Tensor&, Tensor&);

ReduceLayout reduce_layout(const Tensor& x, const std::vector<int>& axes, CopyFn copy = cpu::copy_cast) {
  ReduceLayout L;
  const Shape& s = x.shape();
  bool block = true;
  for (size_t i = 1; i < axes.size(); ++i) block = block && axes[i] == axes[i - 1] + 1;
  if (x.is_contiguous() && block) {
    L.data = x;
    for (int d = 0; d < int(s.size()); ++d) {
      if (d < axes.front()) L.outer *= s[size_t(d)];
      else if (d <= axes.back()) L.reduce *= s[size_t(d)];
      else L.inner *= s[size_t(d)];
    }
    return L;
  }
  // Permute kept axes first, reduced axes last, and materialise.
  auto impl = std::make_shared<TensorImpl>(x.impl());
  impl->grad_fn = nullptr;
  impl->requires_grad = false;
  impl->grad = nullptr;
  Shape ps;
  Strides pst;
  for (int d = 0; d < int(s.size()); ++d)
    if (!std::binary_search(axes.begin(), axes.end(), d)) {
      ps.push_back(s[size_t(d)]);
      pst.push_back(x.strides()[size_t(d)]);
      L.outer *= s[size_t(d)];
    }
  for (int d : axes) {
    ps.push_back(s[size_t(d)]);
    pst.push_back(x.strides()[size_t(d)]);
    L.reduce *= s[size_t(d)];
  }
  impl->shape = ps;
  impl->strides = pst;
  Tensor view(impl);
  L.data = Tensor::empty(ps, x.dtype(), x.device());
  copy(view, L.data);
  return L;
}

class ReducePrim final : public Primitive {
 public:
  ReducePrim(ReduceOp op, std::vector<int> axes, bool keepdim) : op_(op), axes_(std::move(axes)), keepdim_(keepdim) {}
  const char* name() const override { return reduce_op_name(op_); }
  Attrs attrs() const override {
    return {{"axes", std::vector<int64_t>(axes_.begin(), axes_.end())}, {"keepdim", int64_t(keepdim_)}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& x = in[0];
    if (x.dtype() == DType::b8) fail(name(), "is not defined for bool tensors; cast first");
    int64_t count = 1;
    for (int a : axes_) count *= x.shape()[size_t(a)];
    if (count == 0 && (op_ == ReduceOp::max || op_ == ReduceOp::min))
      fail(name(), "reduction over an empty dimension of shape ", shape_str(x.shape()), " has no identity");
    return {{reduced_shape(x.shape(), axes_, keepdim_), x.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (axes_.empty()) {  // a 0-d input reduced over no axes: a copy
      cpu::copy_cast(in[0], out[0]);
      return;
    }
    ReduceLayout L = reduce_layout(in[0], axes_);
    cpu::reduce(op_, L.data, L.outer, L.reduce, L.inner, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (axes_.empty()) {
      cuda::copy_cast(in[0], out[0]);
      return;
    }
    ReduceLayout L = reduce_layout(in[0], axes_, cuda::copy_cast);
    cuda::reduce(op_, L.data, L.outer, L.reduce, L.inner, out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>&) const override {
    const Tensor& x = in[0];
    Shape kept = reduced_shape(x.shape(), axes_, true);
    Tensor g = reshape(ct[0], kept);
    std::vector<int64_t> axes(axes_.begin(), axes_.end());
    switch (op_) {
      case ReduceOp::sum: return {broadcast_to(g, x.shape())};
      case ReduceOp::prod: {
        // d prod / d x_i is the product of the other elements. prod / x_i would
        // be 0/0 at a zero, so: the product of the non-zeros is the gradient of
        // a group's only zero; every other element of a group that holds a
        // zero gets 0. Recomputing the product (rather than reading the saved
        // output) keeps this differentiable a second time.
        Tensor is_zero = eq(x, scalar_like(0.0, x));
        Tensor nonzero = where(is_zero, scalar_like(1.0, x), x);
        Tensor prod_nonzero = prod(nonzero, axes, true);
        Tensor zero_count = sum(cast(is_zero, x.dtype()), axes, true);
        Tensor valid = logical_or(eq(zero_count, scalar_like(0.0, zero_count)),
                                  logical_and(is_zero, eq(zero_count, scalar_like(1.0, zero_count))));
        Tensor others = where(is_zero, broadcast_to(prod_nonzero, x.shape()), prod_nonzero / nonzero);
        return {where(valid, g * others, 0.0)};
      }
      case ReduceOp::max:
      case ReduceOp::min: {
        Tensor hit = cast(eq(x, reshape(out[0], kept)), g.dtype());
        Tensor count = sum(hit, axes, true);
        return {hit * (g / count)};
      }
    }
    return {Tensor()};
  }

 private:
  ReduceOp op_;
  std::vector<int> axes_;
  bool keepdim_;
};

class ArgReducePrim final : public Primitive {
 public:
  ArgReducePrim(bool is_max, int axis, bool keepdim) : is_max_(is_max), axis_(axis), keepdim_(keepdim) {}
  const char* name() const override { return is_max_ ? "argmax" : "argmin"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}, {"keepdim", int64_t(keepdim_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in[0].ndim() > 0 && in[0].shape()[size_t(axis_)] == 0)
      fail(name(), "cannot take the index of an empty dimension");
    if (in[0].dtype() == DType::b8) fail(name(), "is not defined for bool tensors");
    std::vector<int> axes;
    if (in[0].ndim() > 0) axes.push_back(axis_);
    return {{reduced_shape(in[0].shape(), axes, keepdim_), DType::i64}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (in[0].ndim() == 0) {
      cpu::fill(out[0], 0.0);
      return;
    }
    ReduceLayout L = reduce_layout(in[0], {axis_});
    cpu::arg_reduce(is_max_, L.data, L.outer, L.reduce, L.inner, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (in[0].ndim() == 0) {
      cuda::fill(out[0], 0.0);
      return;
    }
    ReduceLayout L = reduce_layout(in[0], {axis_}, cuda::copy_cast);
    cuda::arg_reduce(is_max_, L.data, L.outer, L.reduce, L.inner, out[0]);
  }
#endif

 private:
  bool is_max_;
  int axis_;
  bool keepdim_;
};

// Normalised reduction axes. A 0-d tensor accepts axis 0 or -1 (as in
// PyTorch) and has nothing to reduce over.
std::vector<int> reduction_axes(const Tensor& x, const Axes& axes, const char* op) {
  std::vector<int> ax = normalize_axes(axes, x.ndim(), op);
  if (x.ndim() == 0) ax.clear();
  return ax;
}

int64_t reduction_count(const Tensor& x, const std::vector<int>& axes) {
  int64_t count = 1;
  for (int a : axes) count *= x.shape()[size_t(a)];
  return count;
}

}  // namespace

Tensor reduce(ReduceOp op, const Tensor& x, const Axes& axes, bool keepdim) {
  std::vector<int> ax = reduction_axes(x, axes, reduce_op_name(op));
  return apply1(make_prim<ReducePrim>(op, ax, keepdim), {x});
}

Tensor sum(const Tensor& x, const Axes& axes, bool keepdim) {
  // Integer and bool sums widen to int64, as in PyTorch.
  Tensor in = is_floating(x.dtype()) || x.dtype() == DType::i64 ? x : cast(x, DType::i64);
  return reduce(ReduceOp::sum, in, axes, keepdim);
}
Tensor max(const Tensor& x, const Axes& axes, bool keepdim) { return reduce(ReduceOp::max, x, axes, keepdim); }
Tensor min(const Tensor& x, const Axes& axes, bool keepdim) { return reduce(ReduceOp::min, x, axes, keepdim); }
Tensor prod(const Tensor& x, const Axes& axes, bool keepdim) { return reduce(ReduceOp::prod, x, axes, keepdim); }

Tensor mean(const Tensor& x, const Axes& axes, bool keepdim) {
  if (!is_floating(x.dtype())) fail("mean", "expects a floating-point tensor, got ", dtype_name(x.dtype()));
  int64_t count = reduction_count(x, reduction_axes(x, axes, "mean"));
  return sum(x, axes, keepdim) / double(count);
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  int a = x.ndim() == 0 ? 0 : normalize_axis(axis, x.ndim(), "argmax");
  return apply1(make_prim<ArgReducePrim>(true, a, keepdim), {x});
}
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim) {
  int a = x.ndim() == 0 ? 0 : normalize_axis(axis, x.ndim(), "argmin");
  return apply1(make_prim<ArgReducePrim>(false, a, keepdim), {x});
}

Tensor var(const Tensor& x, const Axes& axes, bool keepdim, int64_t correction) {
  if (!is_floating(x.dtype())) fail("var", "expects a floating-point tensor, got ", dtype_name(x.dtype()));
  int64_t count = reduction_count(x, reduction_axes(x, axes, "var"));
  Tensor centered = x - mean(x, axes, true);
  double denom = double(std::max<int64_t>(count - correction, 0));
  return sum(centered * centered, axes, keepdim) / denom;
}

Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim) {
  if (!is_floating(x.dtype())) fail("logsumexp", "expects a floating-point tensor, got ", dtype_name(x.dtype()));
  std::vector<int> ax = reduction_axes(x, axes, "logsumexp");
  if (reduction_count(x, ax) == 0) return log(sum(exp(x), axes, keepdim));  // log(0) = -inf, as in PyTorch
  // Shift by the (constant, non-differentiated) max for stability; infinite maxima shift by 0.
  Tensor m = max(x.detach(), axes, true);
  m = where(logical_not(logical_or(eq(m, scalar_like(INFINITY, m)), eq(m, scalar_like(-INFINITY, m)))), m, 0.0);
  Tensor s = log(sum(exp(x - m), axes, true)) + m;
  if (keepdim) return s;
  return reshape(s, reduced_shape(x.shape(), ax, false));
}

void register_reduce_primitives(PrimitiveRegistry& r) {
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::prod}) {
    const std::string name = reduce_op_name(op);
    r.add(name, {1, 1}, [op, name](const Attrs& a) {
      std::vector<int64_t> axes = attr_ints(a, "axes", name);
      return make_prim<ReducePrim>(op, std::vector<int>(axes.begin(), axes.end()), attr_int(a, "keepdim", name) != 0);
    });
  }
  for (bool is_max : {false, true}) {
    const std::string name = is_max ? "argmax" : "argmin";
    r.add(name, {1, 1}, [is_max, name](const Attrs& a) {
      return make_prim<ArgReducePrim>(is_max, int(attr_int(a, "axis", name)), attr_int(a, "keepdim", name) != 0);
    });
  }
}

}  // namespace ember
