// dropout as a fused masked scale, y = x * mask / (1 - p), whose vjp applies
// the same primitive with the same mask to the cotangent. The other nn ops
// live beside this file: softmax_ops.cpp, norm_ops.cpp, loss_ops.cpp and
// attention_op.cpp.
#include <cmath>

#include "ember/backend/cpu/loops.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/nn_ops.h"
#include "ember/ops/random_ops.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/index_kernels.h"
#endif

namespace ember {
namespace {

// Inputs: x and a bool mask of x's shape. Output: x * mask * scale.
class MaskedScalePrim final : public Primitive {
 public:
  explicit MaskedScalePrim(double scale) : scale_(scale) {}
  const char* name() const override { return "dropout"; }
  Attrs attrs() const override { return {{"scale", scale_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (!is_floating(in[0].dtype())) fail("dropout", "expects a floating-point tensor, got ", dtype_name(in[0].dtype()));
    if (in[1].dtype() != DType::b8 || in[1].shape() != in[0].shape())
      fail("dropout", "mask must be a bool tensor of shape ", shape_str(in[0].shape()), ", got ",
           dtype_name(in[1].dtype()), " ", shape_str(in[1].shape()));
    return {{in[0].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    const Tensor &x = in[0], &mask = in[1];
    Tensor& y = out[0];
    visit_floating(x.dtype(), "dropout", [&]<typename T>() {
      using A = compute_t<T>;
      const T* px = static_cast<const T*>(x.raw_data());
      const bool* pm = static_cast<const bool*>(mask.raw_data());
      T* py = static_cast<T*>(y.raw_data());
      const A s = A(scale_);
      cpu::for_each_strided<3>(y.shape(), {y.strides(), x.strides(), mask.strides()},
                               [&](std::array<int64_t, 3> off, std::array<int64_t, 3> st, int64_t n) {
                                 T* yo = py + off[0];
                                 const T* xo = px + off[1];
                                 const bool* mo = pm + off[2];
                                 if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
#pragma omp simd
                                   for (int64_t i = 0; i < n; ++i) yo[i] = T(mo[i] ? A(xo[i]) * s : A(0));
                                   return;
                                 }
                                 for (int64_t i = 0; i < n; ++i)
                                   yo[i * st[0]] = T(mo[i * st[2]] ? A(xo[i * st[1]]) * s : A(0));
                               });
    });
  }
#ifdef EMBER_WITH_CUDA
  // The mask is drawn on the host (bernoulli_mask) and copied, so a seed gives the
  // same mask on every device.
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::masked_scale(in[0], in[1], scale_, out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    return {apply1(std::make_shared<MaskedScalePrim>(scale_), {ct[0], in[1]}), Tensor()};
  }

 private:
  double scale_;
};

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training) {
  if (!x.defined()) fail("dropout", "input is an undefined tensor");
  if (!(p >= 0.0 && p < 1.0)) fail("dropout", "probability p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  if (!is_floating(x.dtype())) fail("dropout", "expects a floating-point tensor, got ", dtype_name(x.dtype()));
  Tensor keep = bernoulli_mask(x.shape(), 1.0 - p, x.device());
  return apply1(make_prim<MaskedScalePrim>(1.0 / (1.0 - p)), {x, keep});
}

}  // namespace ember
