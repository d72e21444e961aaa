// Ops that walk one axis in order: sort / topk / argsort (one primitive with two
// outputs, values and int64 indices) and cumsum. Their gradients are ember ops:
// sort and topk scatter the values' cotangent back to the chosen positions,
// cumsum's is the reversed cumulative sum.
#include "ember/autograd/grad_mode.h"
#include "ember/backend/cpu/index_kernels.h"
#include "ember/backend/cpu/sort_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/index_kernels.h"
#include "ember/backend/cuda/sort_kernels.h"
#endif
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/index_detail.h"
#include "ember/ops/index_ops.h"
#include "ember/ops/shape_ops.h"

namespace ember {
namespace {

// The first k entries of each line sorted along axis (k = n for sort).
class SortPrim final : public Primitive {
 public:
  SortPrim(const char* name, int axis, int64_t k, bool descending)
      : name_(name), axis_(axis), k_(k), descending_(descending) {}
  const char* name() const override { return name_; }
  Attrs attrs() const override {
    return {{"axis", int64_t(axis_)}, {"k", k_}, {"descending", int64_t(descending_)}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& x = in[0];
    if (axis_ >= x.ndim()) fail(name_, "axis ", axis_, " is out of range for shape ", shape_str(x.shape()));
    int64_t n = x.shape()[size_t(axis_)];
    if (k_ < 0 || k_ > n)
      fail(name_, "k = ", k_, " is out of range [0, ", n, "] for dimension ", axis_, " of size ", n);
    Shape s = x.shape();
    s[size_t(axis_)] = k_;
    return {{s, x.dtype()}, {s, DType::i64}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::AxisLayout L = cpu::axis_layout(in[0].shape(), axis_);
    cpu::sort_lines(cpu::as_contiguous(in[0]), L.outer, L.n, L.inner, k_, descending_, out[0], out[1]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::AxisLayout L = cpu::axis_layout(in[0].shape(), axis_);
    cuda::sort_lines(cuda::as_contiguous(in[0]), L.outer, L.n, L.inner, k_, descending_, out[0], out[1]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>&) const override {
    if (!ct[0].defined()) return {Tensor()};
    // Positions along the axis are distinct, so the scatter-add is a scatter.
    return {detail::scatter_add_zeros(in[0].shape(), axis_, out[1], ct[0])};
  }

 private:
  const char* name_;
  int axis_;
  int64_t k_;
  bool descending_;
};

class CumsumPrim final : public Primitive {
 public:
  CumsumPrim(int axis, bool reverse) : axis_(axis), reverse_(reverse) {}
  const char* name() const override { return "cumsum"; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}, {"reverse", int64_t(reverse_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in[0].dtype() == DType::b8) fail(name(), "bool tensors must be cast to an integer type first");
    if (in[0].ndim() > 0 && axis_ >= in[0].ndim())
      fail(name(), "axis ", axis_, " is out of range for shape ", shape_str(in[0].shape()));
    return {{in[0].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::AxisLayout L = cpu::axis_layout(in[0].shape(), axis_);
    cpu::cumsum(cpu::as_contiguous(in[0]), L.outer, L.n, L.inner, reverse_, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::AxisLayout L = cpu::axis_layout(in[0].shape(), axis_);
    cuda::cumsum(cuda::as_contiguous(in[0]), L.outer, L.n, L.inner, reverse_, out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    // y_j = sum_{i<=j} x_i, so dL/dx_i = sum_{j>=i} g_j: the scan in the other direction.
    return {apply1(make_prim<CumsumPrim>(axis_, !reverse_), {ct[0]})};
  }

 private:
  int axis_;
  bool reverse_;
};

// Runs a SortPrim; a 0-D input is treated as one element along axis 0.
ValuesIndices run_sort(const char* op, const Tensor& x, int64_t axis, int64_t k_or_all, bool descending) {
  if (!x.defined()) fail(op, "input is undefined");
  if (x.ndim() == 0) {
    normalize_axis(axis, 0, op);
    ValuesIndices r = run_sort(op, reshape(x, {1}), 0, k_or_all, descending);
    if (r.values.numel() == 1) return {reshape(r.values, {}), reshape(r.indices, {})};
    return r;
  }
  int a = normalize_axis(axis, x.ndim(), op);
  int64_t k = k_or_all < 0 ? x.shape()[size_t(a)] : k_or_all;
  std::vector<Tensor> out = apply(make_prim<SortPrim>(op, a, k, descending), {x});
  return {out[0], out[1]};
}

}  // namespace

ValuesIndices topk(const Tensor& x, int64_t k, int64_t axis, bool largest) {
  if (k < 0) fail("topk", "k must be non-negative, got ", k);
  return run_sort("topk", x, axis, k, largest);
}

ValuesIndices sort(const Tensor& x, int64_t axis, bool descending) { return run_sort("sort", x, axis, -1, descending); }

Tensor argsort(const Tensor& x, int64_t axis, bool descending) {
  NoGradGuard no_grad;  // only the (integer) indices are returned: nothing to differentiate
  return run_sort("argsort", x, axis, -1, descending).indices;
}

Tensor cumsum(const Tensor& x, int64_t axis) {
  if (!x.defined()) fail("cumsum", "input is undefined");
  int a = normalize_axis(axis, x.ndim(), "cumsum");
  // Integer and bool sums widen to int64, as in PyTorch.
  Tensor in = is_floating(x.dtype()) || x.dtype() == DType::i64 ? x : cast(x, DType::i64);
  return apply1(make_prim<CumsumPrim>(a, false), {in});
}

}  // namespace ember
