// linear_cross_entropy: a language model's head and its loss as one primitive.
//
// cross_entropy(linear(x, W), t) stores the logits [N, V] for the loss and their
// gradient as large again, and sweeps them through memory four more times (the
// loss, its backward, the two products reading the gradient). The fused
// primitive computes them a block of rows at a time (the CPU kernel in
// backend/cpu/linear_cross_entropy_kernels.h) and, when gradients are being
// recorded, takes the loss's gradients in the same pass: the loss is a scalar,
// so its vjp is the cotangent times the gradients of the loss itself, which are
// the primitive's other two outputs ([N, C] and [V, C], the sizes of x and W).
// No logits are kept, and no product is computed twice.
//
// Its vjp is exact for first derivatives; the saved gradients are constants to
// autodiff, so second derivatives through it are not available (the composite,
// which has them, runs everywhere with EMBER_FUSED_HEAD_LOSS=0).
#include <cstdlib>
#include <cstring>
#include <string>

#include "ember/autograd/grad_mode.h"
#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/linear_cross_entropy_kernels.h"
#include "ember/ops/contiguous_data.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/linalg.h"
#include "ember/ops/nn_ops.h"

namespace ember {
namespace {

constexpr const char* kOp = "linear_cross_entropy";

// Inputs: x [..., C], weight [V, C], targets [...]. Outputs: the loss [] and,
// when `grads`, d loss / dx (x's shape) and d loss / dweight ([V, C]).
class LinearCrossEntropyPrim final : public Primitive {
 public:
  LinearCrossEntropyPrim(int64_t ignore_index, Reduction reduction, bool grads)
      : ignore_index_(ignore_index), reduction_(reduction), grads_(grads) {}
  const char* name() const override { return kOp; }
  Attrs attrs() const override {
    return {{"ignore_index", ignore_index_},
            {"reduction", std::string(reduction_ == Reduction::mean ? "mean" : "sum")},
            {"grads", int64_t(grads_)}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& x = in[0];
    const Tensor& w = in[1];
    const Tensor& t = in[2];
    if (x.dtype() != DType::f32 || w.dtype() != DType::f32)
      fail(name(), "x and weight must be float32, got ", dtype_name(x.dtype()), " and ", dtype_name(w.dtype()));
    if (x.ndim() == 0) fail(name(), "x must have a feature dimension, got a 0-d tensor");
    if (w.ndim() != 2 || w.shape(1) != x.shape().back() || w.shape(0) == 0)
      fail(name(), "weight must be [V, ", x.shape().back(), "] with V > 0 for x ", shape_str(x.shape()), ", got ",
           shape_str(w.shape()));
    if (t.dtype() != DType::i64 && t.dtype() != DType::i32)
      fail(name(), "targets must be int64 or int32 class indices, got ", dtype_name(t.dtype()));
    Shape rows(x.shape().begin(), x.shape().end() - 1);
    if (t.shape() != rows)
      fail(name(), "targets shape ", shape_str(t.shape()), " does not match x ", shape_str(x.shape()),
           " without its feature dimension (", shape_str(rows), ")");
    std::vector<TensorSpec> specs{{Shape{}, DType::f32}};
    if (grads_) {
      specs.push_back({x.shape(), DType::f32});
      specs.push_back({w.shape(), DType::f32});
    }
    return specs;
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Tensor x = contiguous_data(in[0]), w = contiguous_data(in[1]), t = contiguous_data(in[2]);
    Tensor rows = Tensor::empty(t.shape(), DType::f32, x.device());
    Tensor dx = grads_ ? out[1] : Tensor(), dw = grads_ ? out[2] : Tensor();
    const int64_t count =
        cpu::linear_cross_entropy(name(), x, w, t, ignore_index_, reduction_ == Reduction::mean, 0, rows, dx, dw);
    double total = 0;
    const float* p = rows.data<float>();
    for (int64_t i = 0, n = rows.numel(); i < n; ++i) total += double(p[i]);
    // All targets ignored: 0 / 0 = nan for the mean, as in PyTorch.
    cpu::fill(out[0], reduction_ == Reduction::mean ? total / double(count) : total);
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>& out, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    std::vector<Tensor> grads(3);
    if (!ct[0].defined()) return grads;  // only the saved gradients got cotangents: they are internal
    if (!grads_)
      fail(name(), "was computed without gradients (grad mode off, or neither x nor weight required grad) "
                   "and cannot be differentiated; compute the loss with gradients enabled");
    if (needs[0]) grads[0] = ct[0] * out[1];
    if (needs[1]) grads[1] = ct[0] * out[2];
    return grads;
  }

 private:
  int64_t ignore_index_;
  Reduction reduction_;
  bool grads_;
};

bool fused_head_loss_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("EMBER_FUSED_HEAD_LOSS");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return enabled;
}

}  // namespace

Tensor linear_cross_entropy(const Tensor& x, const Tensor& weight, const Tensor& targets, int64_t ignore_index,
                            Reduction reduction) {
  if (!x.defined() || !weight.defined() || !targets.defined())
    fail(kOp, "x, weight or targets is an undefined tensor");
  const bool fused = fused_head_loss_enabled() && reduction != Reduction::none && x.device().is_cpu() &&
                     weight.device().is_cpu() && targets.device().is_cpu() && x.dtype() == DType::f32 &&
                     weight.dtype() == DType::f32;
  if (!fused) return cross_entropy(linear(x, weight), targets, ignore_index, reduction);
  const bool grads = GradMode::enabled() && (x.requires_grad() || weight.requires_grad());
  return ember::apply(make_prim<LinearCrossEntropyPrim>(ignore_index, reduction, grads), {x, weight, targets})[0];
}

}  // namespace ember
