// Joining and splitting: concat is a primitive (each input is copied into its
// window of the output; the gradient is slices of the cotangent), stack is
// unsqueeze + concat, and split / chunk are slices, which are views and cost
// nothing (their gradients come from slice's).
#include <algorithm>

#include "ember/backend/cpu/elementwise_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#endif
#include "ember/ops/primitive_registry.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/index_ops.h"
#include "ember/ops/shape_ops.h"

namespace ember {
namespace {

class ConcatPrim final : public Primitive {
 public:
  explicit ConcatPrim(int axis) : axis_(axis) {}
  const char* name() const override { return "concat"; }
  Attrs attrs() const override { return {{"axis", int64_t(axis_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in.empty()) fail(name(), "needs at least one tensor");
    const Tensor& first = in[0];
    if (axis_ >= first.ndim()) fail(name(), "axis ", axis_, " is out of range for shape ", shape_str(first.shape()));
    Shape s = first.shape();
    s[size_t(axis_)] = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      const Tensor& t = in[i];
      if (t.dtype() != first.dtype())
        fail(name(), "tensor ", i, " has dtype ", dtype_name(t.dtype()), ", expected ", dtype_name(first.dtype()));
      bool ok = t.ndim() == first.ndim();
      for (int d = 0; ok && d < int(t.ndim()); ++d) ok = d == axis_ || t.shape()[size_t(d)] == first.shape()[size_t(d)];
      if (!ok)
        fail(name(), "tensor ", i, " has shape ", shape_str(t.shape()), ", which does not match ",
             shape_str(first.shape()), " outside axis ", axis_);
      s[size_t(axis_)] += t.shape()[size_t(axis_)];
    }
    return {{s, first.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    copy_windows(in, out[0], [](const Tensor& t, Tensor& window) { cpu::copy_cast(t, window); });
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    copy_windows(in, out[0], [](const Tensor& t, Tensor& window) { cuda::copy_cast(t, window); });
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    std::vector<Tensor> grads(in.size());
    int64_t offset = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      int64_t n = in[i].shape()[size_t(axis_)];
      if (needs[i]) grads[i] = slice(ct[0], axis_, offset, offset + n);
      offset += n;
    }
    return grads;
  }

 private:
  // Each input copied (by `copy`, a strided copy) into its window of the output.
  template <typename Copy>
  void copy_windows(const std::vector<Tensor>& in, const Tensor& o, Copy copy) const {
    int64_t offset = 0;
    for (const Tensor& t : in) {
      Tensor window = Tensor::unallocated(t.shape(), o.dtype(), o.device());
      TensorImpl& w = window.impl();
      w.storage = o.storage();
      w.strides = o.strides();
      w.offset = o.offset() + offset * o.strides()[size_t(axis_)];
      if (t.numel() > 0) copy(t, window);
      offset += t.shape()[size_t(axis_)];
    }
  }
  int axis_;
};

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) fail("concat", "needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined()) fail("concat", "tensor ", i, " is undefined");
    if (xs[i].ndim() == 0) fail("concat", "tensor ", i, " is 0-D; zero-dimensional tensors cannot be concatenated");
  }
  int a = normalize_axis(axis, xs[0].ndim(), "concat");
  // Mixed dtypes promote as in PyTorch's cat.
  DType dt = xs[0].dtype();
  for (const Tensor& t : xs) dt = promote_types(dt, t.dtype());
  std::vector<Tensor> in;
  in.reserve(xs.size());
  for (const Tensor& t : xs) in.push_back(cast(t, dt));
  return apply1(make_prim<ConcatPrim>(a), in);
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) fail("stack", "needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined()) fail("stack", "tensor ", i, " is undefined");
    if (xs[i].shape() != xs[0].shape())
      fail("stack", "tensor ", i, " has shape ", shape_str(xs[i].shape()), ", expected ", shape_str(xs[0].shape()),
           " like tensor 0");
  }
  int a = normalize_axis(axis, xs[0].ndim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (const Tensor& t : xs) parts.push_back(unsqueeze(t, a));
  return concat(parts, a);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  if (x.ndim() == 0) fail("split", "cannot split a 0-D tensor");
  int a = normalize_axis(axis, x.ndim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) fail("split", "sizes must be non-negative, got ", shape_str(sizes));
    total += s;
  }
  if (total != x.shape()[size_t(a)])
    fail("split", "sizes ", shape_str(sizes), " add up to ", total, " but dimension ", a, " has size ",
         x.shape()[size_t(a)]);
  std::vector<Tensor> parts;
  parts.reserve(sizes.size());
  int64_t offset = 0;
  for (int64_t s : sizes) {
    parts.push_back(slice(x, a, offset, offset + s));
    offset += s;
  }
  return parts;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis) {
  if (chunks <= 0) fail("chunk", "number of chunks must be positive, got ", chunks);
  if (x.ndim() == 0) fail("chunk", "cannot chunk a 0-D tensor");
  int a = normalize_axis(axis, x.ndim(), "chunk");
  // torch.chunk: equal pieces of ceil(n / chunks), the last one smaller (so
  // fewer than `chunks` pieces may come back).
  int64_t n = x.shape()[size_t(a)];
  int64_t piece = std::max<int64_t>(1, (n + chunks - 1) / chunks);
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < n; start += piece) sizes.push_back(std::min(piece, n - start));
  if (n == 0) sizes.assign(size_t(chunks), 0);  // an empty dimension gives `chunks` empty pieces, as in PyTorch
  return split(x, sizes, a);
}

void register_join_primitives(PrimitiveRegistry& r) {
  r.add("concat", {1, -1}, [](const Attrs& a) { return make_prim<ConcatPrim>(int(attr_int(a, "axis", "concat"))); });
}

}  // namespace ember
