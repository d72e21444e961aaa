// The copy_ primitive: a strided, broadcasting, dtype-converting copy written
// into an existing output.
#include "ember/nn/copy.h"

#include "ember/autograd/grad_mode.h"
#include "ember/backend/cpu/elementwise_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#endif
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/shape_ops.h"

namespace ember::nn {
namespace {

class CopyIntoPrim final : public Primitive {
 public:
  CopyIntoPrim(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {}
  const char* name() const override { return "copy_"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override { return {{"shape", shape_}, {"dtype", dtype_name(dtype_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Shape& src = in[0].shape();
    bool ok = src.size() <= shape_.size();
    for (size_t d = 0; ok && d < src.size(); ++d) {
      int64_t s = src[src.size() - 1 - d], t = shape_[shape_.size() - 1 - d];
      ok = s == t || s == 1;
    }
    if (!ok)
      fail("copy_", "source of shape ", shape_str(src), " does not broadcast to destination shape ", shape_str(shape_));
    return {{shape_, dtype_}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::copy_cast(in[0], out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::copy_cast(in[0], out[0]);
  }
#endif

 private:
  Shape shape_;
  DType dtype_;
};

}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  EMBER_CHECK(dst.defined() && src.defined(), "copy_", "got an undefined tensor");
  EMBER_CHECK(dst.is_contiguous(), "copy_", "destination of shape ", shape_str(dst.shape()), " must be contiguous");
  NoGradGuard no_grad;
  Tensor s = to_device(src.detach(), dst.device());
  std::vector<Tensor> out{dst};
  apply_into(make_prim<CopyIntoPrim>(dst.shape(), dst.dtype()), {s}, out);
}

void rebind_data(const Tensor& handle, const Tensor& value) {
  TensorImpl& h = handle.impl();
  const TensorImpl& v = value.impl();
  h.storage = v.storage;
  h.shape = v.shape;
  h.strides = v.strides;
  h.offset = v.offset;
  h.dtype = v.dtype;
  h.device = v.device;
}

}  // namespace ember::nn
