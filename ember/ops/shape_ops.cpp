// Movement primitives. Reshape, Permute, Slice and Expand are views: their
// outputs share the input's storage with new shape/strides/offset. Their vjps
// are movements too (reshape back, inverse permutation, pad with zeros, sum).
#include "ember/ops/shape_ops.h"
#include "ember/ops/primitive_registry.h"

#include <algorithm>

#include "ember/backend/cpu/elementwise_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#endif
#include "ember/ops/creation.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"

namespace ember {
namespace {

void make_view(const Tensor& in, Tensor& out, const Strides& strides, int64_t offset) {
  TensorImpl& o = out.impl();
  o.storage = in.storage();
  o.strides = strides;
  o.offset = offset;
}

// Strides that let `x` be read as `shape` without copying, if any (the
// algorithm PyTorch's view uses: split the old dims into runs that are
// contiguous with each other and map each new dim into one run).
bool view_strides(const Tensor& x, const Shape& shape, Strides& out) {
  const Shape& old_shape = x.shape();
  const Strides& old_strides = x.strides();
  out.assign(shape.size(), 0);
  if (numel(shape) == 0) {
    out = contiguous_strides(shape);
    return true;
  }
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[size_t(d)];
    bool chunk_end = d == 0 || (old_shape[size_t(d - 1)] != 1 &&
                                old_strides[size_t(d - 1)] != tensor_numel * chunk_base_stride);
    if (chunk_end) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[size_t(view_d)] == 1)) {
        out[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= shape[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[size_t(d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  while (view_d >= 0) out[size_t(view_d--)] = 1;  // trailing size-1 dims
  return true;
}

// Whether two shapes (non-negative dimensions) hold as many elements. Counted in long
// double (exact up to 2^64), so a shape from a file cannot overflow int64 on its way to
// a zero dimension.
bool same_numel(const Shape& a, const Shape& b) {
  auto count = [](const Shape& s) {
    long double n = 1;
    for (int64_t d : s) n *= static_cast<long double>(d);
    return n;
  };
  return count(a) == count(b);
}

class ReshapePrim final : public Primitive {
 public:
  explicit ReshapePrim(Shape shape) : shape_(std::move(shape)) {}
  const char* name() const override { return "reshape"; }
  bool is_view() const override { return true; }
  Attrs attrs() const override { return {{"shape", shape_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    // reshape() resolves -1 and checks the count, but a saved graph's attributes are
    // checked only here: a view of more elements than the input has would read past it.
    for (int64_t d : shape_)
      if (d < 0) fail("reshape", "shape ", shape_str(shape_), " has a negative dimension");
    if (!same_numel(shape_, in[0].shape()))
      fail("reshape", "cannot view ", shape_str(in[0].shape()), " as ", shape_str(shape_));
    return {{shape_, in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Strides st;
    if (view_strides(in[0], shape_, st)) {
      make_view(in[0], out[0], st, in[0].offset());
      return;
    }
    Tensor fresh = Tensor::empty(shape_, in[0].dtype(), in[0].device());
    // Read the input in its logical order into the new contiguous buffer.
    Tensor as_input_shape = Tensor::unallocated(in[0].shape(), in[0].dtype(), in[0].device());
    make_view(fresh, as_input_shape, contiguous_strides(in[0].shape()), 0);
    cpu::copy_cast(in[0], as_input_shape);
    make_view(fresh, out[0], contiguous_strides(shape_), 0);
  }
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Strides st;
    if (!view_strides(in[0], shape_, st)) {
      Tensor c = contiguous(in[0].detach());
      make_view(c, out[0], contiguous_strides(shape_), c.offset());
      return;
    }
    make_view(in[0], out[0], st, in[0].offset());
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    return {reshape(ct[0], in[0].shape())};
  }

 private:
  Shape shape_;
};

class PermutePrim final : public Primitive {
 public:
  explicit PermutePrim(std::vector<int64_t> dims) : dims_(std::move(dims)) {}
  const char* name() const override { return "permute"; }
  bool is_view() const override { return true; }
  Attrs attrs() const override { return {{"dims", dims_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    // permute() passes checked dims, but a saved graph's attributes are checked only here.
    const int64_t ndim = in[0].ndim();
    if (int64_t(dims_.size()) != ndim)
      fail("permute", "got ", dims_.size(), " dims for a tensor of ", ndim, " dimensions");
    std::vector<bool> seen(dims_.size(), false);
    Shape s;
    for (int64_t d : dims_) {
      if (d < 0 || d >= ndim || seen[size_t(d)])
        fail("permute", "dims ", shape_str(dims_), " are not a permutation of ", ndim, " dimensions");
      seen[size_t(d)] = true;
      s.push_back(in[0].shape()[size_t(d)]);
    }
    return {{s, in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    std::vector<int64_t> inverse(dims_.size());
    for (size_t i = 0; i < dims_.size(); ++i) inverse[size_t(dims_[i])] = int64_t(i);
    return {permute(ct[0], inverse)};
  }

 private:
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const {
    Strides st;
    for (int64_t d : dims_) st.push_back(in[0].strides()[size_t(d)]);
    make_view(in[0], out[0], st, in[0].offset());
  }
  std::vector<int64_t> dims_;
};

// Normalised Python-style slice bounds.
struct SliceSpec {
  int64_t start, length, step;
};

class SlicePrim final : public Primitive {
 public:
  SlicePrim(int axis, SliceSpec s) : axis_(axis), s_(s) {}
  const char* name() const override { return "slice"; }
  bool is_view() const override { return true; }
  Attrs attrs() const override {
    return {{"axis", int64_t(axis_)}, {"start", s_.start}, {"length", s_.length}, {"step", s_.step}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    // slice() passes normalised bounds, but a saved graph's attributes are checked only
    // here: the view must stay inside the input.
    Shape s = in[0].shape();
    if (axis_ < 0 || axis_ >= in[0].ndim()) fail("slice", "axis ", axis_, " is out of range for ", shape_str(s));
    const int64_t n = s[size_t(axis_)];
    if (s_.step <= 0 || s_.start < 0 || s_.length < 0 ||
        (s_.length > 0 && (s_.start >= n || (s_.length - 1) > (n - 1 - s_.start) / s_.step)))
      fail("slice", "start ", s_.start, ", length ", s_.length, ", step ", s_.step, " do not fit dimension ", axis_,
           " of size ", n);
    s[size_t(axis_)] = s_.length;
    return {{s, in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override;

 private:
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const {
    Strides st = in[0].strides();
    int64_t offset = in[0].offset() + s_.start * st[size_t(axis_)];
    st[size_t(axis_)] *= s_.step;
    make_view(in[0], out[0], st, offset);
  }
  int axis_;
  SliceSpec s_;
};

// The gradient of slice: the cotangent placed into zeros of the input's shape.
class SliceBackwardPrim final : public Primitive {
 public:
  SliceBackwardPrim(Shape full, int axis, SliceSpec s) : full_(std::move(full)), axis_(axis), s_(s) {}
  const char* name() const override { return "slice_backward"; }
  Attrs attrs() const override {
    return {{"shape", full_}, {"axis", int64_t(axis_)}, {"start", s_.start}, {"length", s_.length}, {"step", s_.step}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    return {{full_, in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    run(in, out, cpu::fill, cpu::copy_cast);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    run(in, out, cuda::fill, cuda::copy_cast);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    return {apply1(make_prim<SlicePrim>(axis_, s_), {ct[0]})};
  }

 private:
  // Zeros, then the cotangent copied into the sliced window of them.
  template <typename Fill, typename Copy>
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out, Fill fill, Copy copy) const {
    fill(out[0], 0.0);
    Shape window = full_;
    window[size_t(axis_)] = s_.length;
    Strides st = out[0].strides();
    Tensor dst = Tensor::unallocated(window, out[0].dtype(), out[0].device());
    make_view(out[0], dst, st, out[0].offset() + s_.start * st[size_t(axis_)]);
    dst.impl().strides[size_t(axis_)] *= s_.step;
    copy(in[0], dst);
  }
  Shape full_;
  int axis_;
  SliceSpec s_;
};

std::vector<Tensor> SlicePrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&,
                                   const std::vector<Tensor>& ct, const std::vector<bool>&) const {
  return {apply1(make_prim<SliceBackwardPrim>(in[0].shape(), axis_, s_), {ct[0]})};
}

class ExpandPrim final : public Primitive {
 public:
  explicit ExpandPrim(Shape shape) : shape_(std::move(shape)) {}
  const char* name() const override { return "broadcast_to"; }
  bool is_view() const override { return true; }
  Attrs attrs() const override { return {{"shape", shape_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Shape& s = in[0].shape();
    bool ok = s.size() <= shape_.size();
    for (size_t i = 0; ok && i < s.size(); ++i) {
      int64_t t = shape_[shape_.size() - s.size() + i];
      ok = s[i] == t || s[i] == 1;
    }
    if (!ok) fail("broadcast_to", "cannot broadcast shape ", shape_str(s), " to ", shape_str(shape_));
    return {{shape_, in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    return {ct[0]};  // the engine sums it down to the input's shape
  }

 private:
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const {
    make_view(in[0], out[0], broadcast_strides(in[0].shape(), in[0].strides(), shape_), in[0].offset());
  }
  Shape shape_;
};

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) fail("reshape", "only one dimension can be -1, got ", shape_str(shape));
      infer = int64_t(i);
    } else if (s[i] < 0) {
      fail("reshape", "invalid dimension ", s[i], " in ", shape_str(shape));
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      fail("reshape", "cannot infer -1 in ", shape_str(shape), " for ", x.numel(), " elements");
    s[size_t(infer)] = x.numel() / known;
  }
  if (numel(s) != x.numel())
    fail("reshape", "cannot reshape ", shape_str(x.shape()), " (", x.numel(), " elements) to ", shape_str(shape));
  if (s == x.shape()) return x;
  return apply1(make_prim<ReshapePrim>(s), {x});
}

Tensor flatten(const Tensor& x, int64_t start_axis, int64_t end_axis) {
  if (x.ndim() == 0) return reshape(x, {1});
  int a = normalize_axis(start_axis, x.ndim(), "flatten"), b = normalize_axis(end_axis, x.ndim(), "flatten");
  if (a > b) fail("flatten", "start axis ", start_axis, " is after end axis ", end_axis);
  Shape s;
  for (int i = 0; i < a; ++i) s.push_back(x.shape(i));
  int64_t n = 1;
  for (int i = a; i <= b; ++i) n *= x.shape(i);
  s.push_back(n);
  for (int64_t i = b + 1; i < x.ndim(); ++i) s.push_back(x.shape(i));
  return reshape(x, s);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  if (int64_t(dims.size()) != x.ndim())
    fail("permute", "got ", dims.size(), " dims for a tensor of ", x.ndim(), " dimensions");
  std::vector<int64_t> d;
  std::vector<bool> seen(dims.size(), false);
  for (int64_t a : dims) {
    int n = normalize_axis(a, x.ndim(), "permute");
    if (seen[size_t(n)]) fail("permute", "dimension ", a, " repeated in ", shape_str(dims));
    seen[size_t(n)] = true;
    d.push_back(n);
  }
  bool identity = true;
  for (size_t i = 0; i < d.size(); ++i) identity = identity && d[i] == int64_t(i);
  if (identity) return x;
  return apply1(make_prim<PermutePrim>(d), {x});
}

namespace {
// Ops that pick out elements along an axis need one (normalize_axis accepts
// axis 0 of a 0-d tensor, for reductions).
void check_has_axes(const Tensor& x, const char* op) {
  if (x.ndim() == 0) fail(op, "needs a tensor with at least one dimension, got a 0-d tensor");
}

}  // namespace

Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1) {
  if (x.ndim() == 0) {  // as in PyTorch, a scalar transposes to itself over axes 0/-1
    normalize_axis(axis0, 0, "transpose");
    normalize_axis(axis1, 0, "transpose");
    return x;
  }
  int a = normalize_axis(axis0, x.ndim(), "transpose"), b = normalize_axis(axis1, x.ndim(), "transpose");
  std::vector<int64_t> d(size_t(x.ndim()));
  for (size_t i = 0; i < d.size(); ++i) d[i] = int64_t(i);
  std::swap(d[size_t(a)], d[size_t(b)]);
  return permute(x, d);
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t stop, int64_t step) {
  check_has_axes(x, "slice");
  int a = normalize_axis(axis, x.ndim(), "slice");
  if (step <= 0) fail("slice", "step must be positive, got ", step);
  int64_t n = x.shape(a);
  auto clip = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  int64_t b = clip(start), e = clip(stop);
  int64_t length = e > b ? (e - b + step - 1) / step : 0;
  if (b == 0 && length == n && step == 1) return x;
  return apply1(make_prim<SlicePrim>(a, SliceSpec{b, length, step}), {x});
}

Tensor narrow(const Tensor& x, int64_t axis, int64_t start, int64_t length) {
  check_has_axes(x, "narrow");
  int a = normalize_axis(axis, x.ndim(), "narrow");
  int64_t n = x.shape(a);
  if (start < 0) start += n;
  if (start < 0 || length < 0 || start + length > n)
    fail("narrow", "range [", start, ", ", start + length, ") is outside dimension ", a, " of size ", n);
  return slice(x, a, start, start + length);
}

Tensor select(const Tensor& x, int64_t axis, int64_t index) {
  check_has_axes(x, "select");
  int a = normalize_axis(axis, x.ndim(), "select");
  int64_t n = x.shape(a);
  if (index < -n || index >= n) fail("select", "index ", index, " is out of range for dimension ", a, " of size ", n);
  if (index < 0) index += n;
  Tensor s = slice(x, a, index, index + 1);
  Shape shape = x.shape();
  shape.erase(shape.begin() + a);
  return reshape(s, shape);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return apply1(make_prim<ExpandPrim>(shape), {x});
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  size_t off = s.size() >= size_t(x.ndim()) ? s.size() - size_t(x.ndim()) : 0;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == -1) {
      if (i < off) fail("expand", "-1 is not allowed for a new leading dimension in ", shape_str(shape));
      s[i] = x.shape()[i - off];
    }
  return broadcast_to(x, s);
}

Tensor squeeze(const Tensor& x, const std::vector<int64_t>& axes) {
  std::vector<int> ax;
  if (axes.empty()) {
    for (int i = 0; i < x.ndim(); ++i)
      if (x.shape(i) == 1) ax.push_back(i);
  } else {
    for (int64_t a : axes) {
      int n = normalize_axis(a, x.ndim(), "squeeze");
      if (x.ndim() == 0) continue;  // squeeze(scalar, 0) is the scalar, as in PyTorch
      if (x.shape(n) != 1) fail("squeeze", "dimension ", a, " has size ", x.shape(n), ", not 1");
      ax.push_back(n);
    }
  }
  Shape s;
  for (int i = 0; i < x.ndim(); ++i)
    if (std::find(ax.begin(), ax.end(), i) == ax.end()) s.push_back(x.shape(i));
  return reshape(x, s);
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  int a = normalize_axis(axis, x.ndim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + a, 1);
  return reshape(x, s);
}

void register_shape_primitives(PrimitiveRegistry& r) {
  r.add("reshape", {1, 1}, [](const Attrs& a) { return make_prim<ReshapePrim>(attr_ints(a, "shape", "reshape")); });
  r.add("permute", {1, 1}, [](const Attrs& a) { return make_prim<PermutePrim>(attr_ints(a, "dims", "permute")); });
  r.add("broadcast_to", {1, 1}, [](const Attrs& a) { return make_prim<ExpandPrim>(attr_ints(a, "shape", "broadcast_to")); });
  r.add("slice", {1, 1}, [](const Attrs& a) {
    SliceSpec s{attr_int(a, "start", "slice"), attr_int(a, "length", "slice"), attr_int(a, "step", "slice")};
    return make_prim<SlicePrim>(int(attr_int(a, "axis", "slice")), s);
  });
}

}  // namespace ember
