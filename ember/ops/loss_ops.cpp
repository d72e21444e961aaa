// cross_entropy as one fused primitive (log-softmax + negative log likelihood).
//
// The forward pass also outputs each row's logsumexp so the fused backward
// builds (softmax - onehot) * g / count in one sweep without a one-hot tensor.
// The backward primitive's own vjp (for second derivatives) is written in
// ordinary ops; only that rarely used path materialises a one-hot tensor.
#include <algorithm>
#include <cmath>
#include <string>

#include "ember/backend/cpu/cross_entropy_kernels.h"
#include "ember/backend/cpu/elementwise_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/cross_entropy_kernels.h"
#include "ember/backend/cuda/elementwise_kernels.h"
#endif
#include "ember/ops/creation.h"
#include "ember/ops/contiguous_data.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/nn_ops.h"
#include "ember/ops/reduce.h"
#include "ember/ops/shape_ops.h"

namespace ember {
namespace {

// Contiguous targets readable by the host: a copy when they live on a GPU
// (the targets are checked and counted on the host, with the CPU's errors).
Tensor host_targets(const Tensor& t) {
  Tensor c = contiguous_data(t);
  if (c.device().is_cpu()) return c;
  Tensor h = Tensor::empty(c.shape(), c.dtype(), Device::cpu());
  copy_bytes(h, c);
  return h;
}

DType stats_dtype(DType x) { return x == DType::f64 ? DType::f64 : DType::f32; }

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
    case Reduction::none: return "none";
  }
  return "?";
}

// The mean divides by the number of non-ignored targets; with none, PyTorch's
// loss is 0/0 = nan, while gradients are zero (every row is ignored), so the
// backward paths divide by at least 1.
double backward_divisor(Reduction r, const Tensor& targets, int64_t ignore_index) {
  if (r != Reduction::mean) return 1.0;
  return double(std::max<int64_t>(1, cpu::count_cross_entropy_targets(host_targets(targets), ignore_index)));
}

// Inputs: logits [..., C], targets [...]. Outputs: the loss ([] or [...] for
// none) and the per-row logsumexp [...] used by the backward pass.
class CrossEntropyPrim final : public Primitive {
 public:
  CrossEntropyPrim(int64_t ignore_index, Reduction reduction) : ignore_index_(ignore_index), reduction_(reduction) {}
  const char* name() const override { return "cross_entropy"; }
  Attrs attrs() const override {
    return {{"ignore_index", ignore_index_}, {"reduction", std::string(reduction_name(reduction_))}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& z = in[0];
    const Tensor& t = in[1];
    if (!is_floating(z.dtype())) fail(name(), "logits must be floating-point, got ", dtype_name(z.dtype()));
    if (z.ndim() == 0) fail(name(), "logits must have a class dimension, got a 0-d tensor");
    if (t.dtype() != DType::i64 && t.dtype() != DType::i32)
      fail(name(), "targets must be int64 or int32 class indices, got ", dtype_name(t.dtype()));
    Shape rows(z.shape().begin(), z.shape().end() - 1);
    if (t.shape() != rows)
      fail(name(), "targets shape ", shape_str(t.shape()), " does not match logits shape ", shape_str(z.shape()),
           " without its class dimension (", shape_str(rows), ")");
    Shape loss = reduction_ == Reduction::none ? rows : Shape{};
    return {{loss, z.dtype()}, {rows, stats_dtype(z.dtype())}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Tensor& loss = out[0];
    Tensor& lse = out[1];
    bool direct = reduction_ == Reduction::none && loss.dtype() == lse.dtype();
    Tensor rows = direct ? loss : Tensor::empty(lse.shape(), lse.dtype(), lse.device());
    int64_t count = cpu::cross_entropy_forward(contiguous_data(in[0]), contiguous_data(in[1]), ignore_index_, rows, lse);
    if (reduction_ == Reduction::none) {
      if (!direct) cpu::copy_cast(rows, loss);
      return;
    }
    double total = 0;
    visit_floating(rows.dtype(), name(), [&]<typename A>() {
      const A* p = rows.data<A>();
      for (int64_t i = 0, n = rows.numel(); i < n; ++i) total += double(p[i]);
    });
    // All targets ignored: 0 / 0 = nan for the mean, as in PyTorch.
    cpu::fill(loss, reduction_ == Reduction::mean ? total / double(count) : total);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Tensor& loss = out[0];
    Tensor& lse = out[1];
    Tensor t = contiguous_data(in[1]);
    Tensor host = host_targets(t);
    cpu::check_cross_entropy_targets(host, in[0].shape().back(), ignore_index_);
    const int64_t count = cpu::count_cross_entropy_targets(host, ignore_index_);
    bool direct = reduction_ == Reduction::none && loss.dtype() == lse.dtype();
    Tensor rows = direct ? loss : Tensor::empty(lse.shape(), lse.dtype(), lse.device());
    cuda::cross_entropy_forward(contiguous_data(in[0]), t, ignore_index_, rows, lse);
    if (reduction_ == Reduction::none) {
      if (!direct) cuda::copy_cast(rows, loss);
      return;
    }
    // All targets ignored: 0 / 0 = nan for the mean, as in PyTorch.
    cuda::cross_entropy_total(rows, reduction_ == Reduction::mean ? double(count) : 1.0, loss);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>&) const override;

 private:
  int64_t ignore_index_;
  Reduction reduction_;
};

// Inputs: logits, targets, lse (saved), g (the loss cotangent). Output: dlogits.
class CrossEntropyBackwardPrim final : public Primitive {
 public:
  CrossEntropyBackwardPrim(int64_t ignore_index, Reduction reduction)
      : ignore_index_(ignore_index), reduction_(reduction) {}
  const char* name() const override { return "cross_entropy_backward"; }
  Attrs attrs() const override {
    return {{"ignore_index", ignore_index_}, {"reduction", std::string(reduction_name(reduction_))}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& z = in[0];
    const Tensor& g = in[3];
    Shape want = reduction_ == Reduction::none ? in[1].shape() : Shape{};
    if (g.shape() != want || g.dtype() != z.dtype())
      fail(name(), "gradient ", dtype_name(g.dtype()), " ", shape_str(g.shape()), " does not match the loss ",
           dtype_name(z.dtype()), " ", shape_str(want));
    return {{z.shape(), z.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Tensor t = contiguous_data(in[1]);
    double divisor = backward_divisor(reduction_, t, ignore_index_);
    cpu::cross_entropy_backward(contiguous_data(in[0]), t, contiguous_data(in[2]), ignore_index_,
                                contiguous_data(in[3]), reduction_ == Reduction::none, divisor, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Tensor t = contiguous_data(in[1]);
    Tensor host = host_targets(t);
    cpu::check_cross_entropy_targets(host, in[0].shape().back(), ignore_index_);
    double divisor = backward_divisor(reduction_, host, ignore_index_);
    cuda::cross_entropy_backward(contiguous_data(in[0]), t, contiguous_data(in[2]), ignore_index_,
                                 contiguous_data(in[3]), reduction_ == Reduction::none, divisor, out[0]);
  }
#endif
  // dz = w (p - onehot) with p = softmax(z) and the row weight w = g * valid / divisor.
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    const Tensor& z = in[0];
    const Tensor& t = in[1];
    const Tensor& g = in[3];
    const Tensor& u = ct[0];
    const std::vector<int64_t> last{-1};
    double divisor = backward_divisor(reduction_, t, ignore_index_);
    Tensor p = softmax(z, -1);
    Tensor valid = cast(ne(t, scalar_like(double(ignore_index_), t)), z.dtype());
    Tensor gz, gg;
    if (needs[0]) {
      Tensor w = unsqueeze(g * valid / divisor, -1);
      gz = w * p * (u - sum(u * p, last, true));
    }
    if (needs[3]) {
      int64_t C = z.shape().back();
      Tensor onehot = cast(eq(unsqueeze(t, -1), arange(0, double(C), 1, t.dtype())), z.dtype());
      Tensor per_row = sum(u * (p - onehot), last) * valid;
      gg = reduction_ == Reduction::none ? per_row : sum(per_row) / divisor;
    }
    return {gz, Tensor(), Tensor(), gg};
  }

 private:
  int64_t ignore_index_;
  Reduction reduction_;
};

std::vector<Tensor> CrossEntropyPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                                          const std::vector<Tensor>& ct, const std::vector<bool>&) const {
  if (!ct[0].defined()) return {Tensor(), Tensor()};  // only lse got a gradient: it is internal
  return {apply1(std::make_shared<CrossEntropyBackwardPrim>(ignore_index_, reduction_), {in[0], in[1], out[1], ct[0]}),
          Tensor()};
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  if (!logits.defined() || !targets.defined()) fail("cross_entropy", "logits or targets is an undefined tensor");
  return ember::apply(make_prim<CrossEntropyPrim>(ignore_index, reduction), {logits, targets})[0];
}

}  // namespace ember
