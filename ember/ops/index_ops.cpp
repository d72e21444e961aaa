// Indexing primitives: index_select (and its gradient, a deterministic
// index-add into zeros), embedding (a row lookup sharing those kernels),
// gather / scatter_add (each other's gradients), one_hot, and the triangular
// masks tril / triu. Shapes and dtypes are checked in output_specs; index
// values are checked by the kernels before any memory is touched.
#include "ember/ops/index_ops.h"
#include "ember/ops/primitive_registry.h"

#include "ember/ops/index_detail.h"

#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/index_kernels.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/shape_ops.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#include "ember/backend/cuda/index_kernels.h"
#endif

namespace ember {
namespace {

void check_index_dtype(const Tensor& index, const char* op, const char* what = "index") {
  if (index.dtype() != DType::i64 && index.dtype() != DType::i32)
    fail(op, what, " must be int64 or int32, got ", dtype_name(index.dtype()));
}

std::string dim_str(int axis, int64_t size) { return str_cat("dimension ", axis, " of size ", size); }

class IndexSelectPrim final : public Primitive {
 public:
  explicit IndexSelectPrim(int axis) : axis_(axis) {}
  const char* name() const override { return "index_select"; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor &x = in[0], &index = in[1];
    check_index_dtype(index, name());
    if (index.ndim() > 1) fail(name(), "index must be 0-D or 1-D, got shape ", shape_str(index.shape()));
    if (axis_ >= x.ndim()) fail(name(), "axis ", axis_, " is out of range for shape ", shape_str(x.shape()));
    Shape s = x.shape();
    s[size_t(axis_)] = index.numel();
    return {{s, x.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::AxisLayout L = cpu::axis_layout(in[0].shape(), axis_);
    cpu::index_select(cpu::as_contiguous(in[0]), L.outer, L.n, L.inner, cpu::as_contiguous(in[1]), out[0], name(),
                      dim_str(axis_, L.n));
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::AxisLayout L = cpu::axis_layout(in[0].shape(), axis_);
    cuda::index_select(cuda::as_contiguous(in[0]), L.outer, L.n, L.inner, cuda::as_contiguous(in[1]), out[0], name(),
                       dim_str(axis_, L.n));
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override;

 private:
  int axis_;
};

// The gradient of index_select: rows of g added into zeros at their indices.
class IndexAddZerosPrim final : public Primitive {
 public:
  IndexAddZerosPrim(int axis, int64_t size) : axis_(axis), size_(size) {}
  const char* name() const override { return "index_select_backward"; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}, {"size", size_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor &g = in[0], &index = in[1];
    check_index_dtype(index, name());
    if (axis_ >= g.ndim() || index.ndim() > 1 || g.shape()[size_t(axis_)] != index.numel())
      fail(name(), "gradient of shape ", shape_str(g.shape()), " does not match index of shape ",
           shape_str(index.shape()), " at axis ", axis_);
    Shape s = g.shape();
    s[size_t(axis_)] = size_;
    return {{s, g.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::AxisLayout L = cpu::axis_layout(in[0].shape(), axis_);
    cpu::index_add_zeros(cpu::as_contiguous(in[0]), L.outer, L.n, L.inner, cpu::as_contiguous(in[1]), size_, out[0],
                         name(), dim_str(axis_, size_));
  }
#ifdef EMBER_WITH_CUDA
  // Atomic adds into zeros; the indices were checked by the forward op.
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::AxisLayout L = cpu::axis_layout(in[0].shape(), axis_);
    cuda::index_add_zeros(cuda::as_contiguous(in[0]), L.outer, L.n, L.inner, cuda::as_contiguous(in[1]), size_,
                          out[0], name(), dim_str(axis_, size_));
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    return {apply1(make_prim<IndexSelectPrim>(axis_), {ct[0], in[1]}), Tensor()};
  }

 private:
  int axis_;
  int64_t size_;
};

std::vector<Tensor> IndexSelectPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&,
                                         const std::vector<Tensor>& ct, const std::vector<bool>& needs) const {
  if (!needs[0]) return {Tensor(), Tensor()};
  return {apply1(make_prim<IndexAddZerosPrim>(axis_, in[0].shape()[size_t(axis_)]), {ct[0], in[1]}), Tensor()};
}

// weight [V, D], ids (any shape) -> [..., D]: a parallel copy of whole rows.
class EmbeddingPrim final : public Primitive {
 public:
  const char* name() const override { return "embedding"; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor &w = in[0], &ids = in[1];
    if (w.ndim() != 2) fail(name(), "weight must be 2-D [V, D], got shape ", shape_str(w.shape()));
    check_index_dtype(ids, name(), "ids");
    Shape s = ids.shape();
    s.push_back(w.shape()[1]);
    return {{s, w.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    int64_t V = in[0].shape()[0], D = in[0].shape()[1];
    cpu::index_select(cpu::as_contiguous(in[0]), 1, V, D, cpu::as_contiguous(in[1]), out[0], name(),
                      str_cat("a table of ", V, " rows"));
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    int64_t V = in[0].shape()[0], D = in[0].shape()[1];
    cuda::index_select(cuda::as_contiguous(in[0]), 1, V, D, cuda::as_contiguous(in[1]), out[0], name(),
                       str_cat("a table of ", V, " rows"));
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    if (!needs[0]) return {Tensor(), Tensor()};
    int64_t V = in[0].shape()[0], D = in[0].shape()[1], n = in[1].numel();
    Tensor g = reshape(ct[0], {n, D});
    return {apply1(make_prim<IndexAddZerosPrim>(0, V), {g, reshape(in[1], {n})}), Tensor()};
  }
};

// Checks the torch.gather / scatter shape rule: index fits into `other` off the axis.
void check_fits(const Tensor& index, const Shape& other, int axis, bool on_axis_too, const char* op,
                const char* other_name) {
  if (index.ndim() != int64_t(other.size()))
    fail(op, "index has ", index.ndim(), " dimensions but ", other_name, " has ", other.size(), " (shapes ",
         shape_str(index.shape()), " and ", shape_str(other), ")");
  for (int d = 0; d < int(index.ndim()); ++d)
    if ((d != axis || on_axis_too) && index.shape()[size_t(d)] > other[size_t(d)])
      fail(op, "index of shape ", shape_str(index.shape()), " is larger than ", other_name, " of shape ",
           shape_str(other), " at dimension ", d);
}

class GatherPrim final : public Primitive {
 public:
  explicit GatherPrim(int axis) : axis_(axis) {}
  const char* name() const override { return "gather"; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    check_index_dtype(in[1], name());
    check_fits(in[1], in[0].shape(), axis_, false, name(), "input");
    return {{in[1].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::gather(in[0], axis_, cpu::as_contiguous(in[1]), out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::gather(in[0], axis_, cuda::as_contiguous(in[1]), out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override;

 private:
  int axis_;
};

// out = x with src added at index along axis; src has index's shape.
class ScatterAddPrim final : public Primitive {
 public:
  explicit ScatterAddPrim(int axis) : axis_(axis) {}
  const char* name() const override { return "scatter_add"; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor &x = in[0], &index = in[1], &src = in[2];
    check_index_dtype(index, name());
    if (src.dtype() != x.dtype())
      fail(name(), "src dtype ", dtype_name(src.dtype()), " differs from input dtype ", dtype_name(x.dtype()));
    if (x.dtype() == DType::b8) fail(name(), "cannot accumulate bool tensors");
    if (src.shape() != index.shape())
      fail(name(), "src of shape ", shape_str(src.shape()), " must have index's shape ", shape_str(index.shape()));
    check_fits(index, x.shape(), axis_, false, name(), "input");
    return {{x.shape(), x.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::copy_cast(in[0], out[0]);
    cpu::scatter_add(out[0], axis_, cpu::as_contiguous(in[1]), in[2]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::copy_cast(in[0], out[0]);
    cuda::scatter_add(out[0], axis_, cuda::as_contiguous(in[1]), in[2]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    Tensor gsrc = needs[2] ? apply1(make_prim<GatherPrim>(axis_), {ct[0], in[1]}) : Tensor();
    return {needs[0] ? ct[0] : Tensor(), Tensor(), gsrc};
  }

 private:
  int axis_;
};

// scatter_add into zeros of a given shape without materialising the zeros
// first: one pass over the output instead of three.
class ScatterAddZerosPrim final : public Primitive {
 public:
  ScatterAddZerosPrim(int axis, Shape shape) : axis_(axis), shape_(std::move(shape)) {}
  const char* name() const override { return "gather_backward"; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}, {"shape", shape_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor &index = in[0], &src = in[1];
    check_index_dtype(index, name());
    if (src.dtype() == DType::b8) fail(name(), "cannot accumulate bool tensors");
    if (src.shape() != index.shape())
      fail(name(), "src of shape ", shape_str(src.shape()), " must have index's shape ", shape_str(index.shape()));
    check_fits(index, shape_, axis_, false, name(), "output");
    return {{shape_, src.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::fill(out[0], 0.0);
    cpu::scatter_add(out[0], axis_, cpu::as_contiguous(in[0]), in[1]);
  }
#ifdef EMBER_WITH_CUDA
  // The indices come from gather's forward (checked) or from a sort: no read-back.
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::fill(out[0], 0.0);
    cuda::scatter_add(out[0], axis_, cuda::as_contiguous(in[0]), in[1], /*checked=*/false);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    if (!needs[1]) return {Tensor(), Tensor()};
    return {Tensor(), apply1(make_prim<GatherPrim>(axis_), {ct[0], in[0]})};
  }

 private:
  int axis_;
  Shape shape_;
};

std::vector<Tensor> GatherPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&,
                                    const std::vector<Tensor>& ct, const std::vector<bool>& needs) const {
  if (!needs[0]) return {Tensor(), Tensor()};
  return {apply1(make_prim<ScatterAddZerosPrim>(axis_, in[0].shape()), {in[1], ct[0]}), Tensor()};
}

class OneHotPrim final : public Primitive {
 public:
  OneHotPrim(int64_t classes, DType dtype) : classes_(classes), dtype_(dtype) {}
  const char* name() const override { return "one_hot"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override { return {{"num_classes", classes_}, {"dtype", dtype_name(dtype_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    check_index_dtype(in[0], name(), "ids");
    if (classes_ <= 0) fail(name(), "num_classes must be positive, got ", classes_);
    Shape s = in[0].shape();
    s.push_back(classes_);
    return {{s, dtype_}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::one_hot(cpu::as_contiguous(in[0]), classes_, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::one_hot(cuda::as_contiguous(in[0]), classes_, out[0]);
  }
#endif

 private:
  int64_t classes_;
  DType dtype_;
};

class TrianglePrim final : public Primitive {
 public:
  TrianglePrim(int64_t k, bool upper) : k_(k), upper_(upper) {}
  const char* name() const override { return upper_ ? "triu" : "tril"; }
  Attrs attrs() const override { return {{"k", k_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in[0].ndim() < 2) fail(name(), "needs at least 2 dimensions, got shape ", shape_str(in[0].shape()));
    return {{in[0].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    int64_t rows = in[0].shape(-2), cols = in[0].shape(-1);
    int64_t batch = rows * cols == 0 ? 0 : in[0].numel() / (rows * cols);
    cpu::triangle(cpu::as_contiguous(in[0]), batch, rows, cols, k_, upper_, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    int64_t rows = in[0].shape(-2), cols = in[0].shape(-1);
    int64_t batch = rows * cols == 0 ? 0 : in[0].numel() / (rows * cols);
    cuda::triangle(cuda::as_contiguous(in[0]), batch, rows, cols, k_, upper_, out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    return {apply1(make_prim<TrianglePrim>(k_, upper_), {ct[0]})};
  }

 private:
  int64_t k_;
  bool upper_;
};

}  // namespace

namespace detail {
Tensor scatter_add_zeros(const Shape& shape, int axis, const Tensor& index, const Tensor& src) {
  return apply1(make_prim<ScatterAddZerosPrim>(axis, shape), {index, src});
}
}  // namespace detail

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index) {
  if (x.ndim() == 0) fail("index_select", "needs a tensor with at least one dimension, got a 0-D tensor");
  int a = normalize_axis(axis, x.ndim(), "index_select");
  return apply1(make_prim<IndexSelectPrim>(a), {x, index});
}

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  if (x.ndim() == 0) fail("gather", "needs a tensor with at least one dimension, got a 0-D tensor");
  int a = normalize_axis(axis, x.ndim(), "gather");
  return apply1(make_prim<GatherPrim>(a), {x, index});
}

Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  if (x.ndim() == 0) fail(op, "needs a tensor with at least one dimension, got a 0-D tensor");
  int a = normalize_axis(axis, x.ndim(), op);
  check_index_dtype(index, op);
  // As in PyTorch, src may be larger than index; only its leading block is used.
  check_fits(index, src.shape(), a, true, op, "src");
  Tensor s = src;
  for (int d = 0; d < int(index.ndim()); ++d)
    if (s.shape()[size_t(d)] != index.shape()[size_t(d)]) s = narrow(s, d, 0, index.shape()[size_t(d)]);
  return apply1(make_prim<ScatterAddPrim>(a), {x, index, s});
}

Tensor embedding(const Tensor& weight, const Tensor& ids) { return apply1(make_prim<EmbeddingPrim>(), {weight, ids}); }

Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype) {
  return apply1(make_prim<OneHotPrim>(num_classes, dtype), {ids});
}

Tensor tril(const Tensor& x, int64_t k) { return apply1(make_prim<TrianglePrim>(k, false), {x}); }
Tensor triu(const Tensor& x, int64_t k) { return apply1(make_prim<TrianglePrim>(k, true), {x}); }

void register_index_primitives(PrimitiveRegistry& r) {
  r.add("embedding", {2, 2}, [](const Attrs&) { return make_prim<EmbeddingPrim>(); });
  r.add("index_select", {2, 2}, [](const Attrs& a) {
    return make_prim<IndexSelectPrim>(int(attr_int(a, "axis", "index_select")));
  });
  r.add("gather", {2, 2}, [](const Attrs& a) { return make_prim<GatherPrim>(int(attr_int(a, "axis", "gather"))); });
  for (bool upper : {false, true})
    r.add(upper ? "triu" : "tril", {1, 1}, [upper](const Attrs& a) {
      return make_prim<TrianglePrim>(attr_int(a, "k", upper ? "triu" : "tril"), upper);
    });
}

}  // namespace ember
