// matmul and linear: the two matrix-product primitives and their vjps.
//
// MatmulPrim takes operands of at least two dimensions (batch dimensions
// broadcast); the public matmul() promotes 1-D operands with unsqueeze and
// removes the added dimension with squeeze, so the promotion's gradient is the
// ordinary reshape gradient and the primitive's vjp never sees a vector.
// Both vjps use transpose views, which the kernel turns into GEMM transpose
// flags, so the backward pass copies no more than the forward pass.
#include "ember/ops/linalg.h"
#include "ember/ops/primitive_registry.h"

#include "ember/backend/cpu/matmul_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/matmul_kernels.h"
#endif
#include "ember/ops/dispatch.h"
#include "ember/ops/reduce.h"
#include "ember/ops/shape_ops.h"

namespace ember {
namespace {

Shape batch_of(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// The broadcast batch shape of two operands (each of at least two dimensions).
Shape broadcast_batch(const Shape& a, const Shape& b, const Shape& a_user, const Shape& b_user) {
  Shape ba = batch_of(a), bb = batch_of(b);
  size_t n = std::max(ba.size(), bb.size());
  Shape out(n, 1);
  for (size_t i = 0; i < n; ++i) {
    int64_t x = i < n - ba.size() ? 1 : ba[i - (n - ba.size())];
    int64_t y = i < n - bb.size() ? 1 : bb[i - (n - bb.size())];
    if (x != y && x != 1 && y != 1)
      fail("matmul", "batch dimensions of shapes ", shape_str(a_user), " and ", shape_str(b_user),
           " do not broadcast (", shape_str(ba), " vs ", shape_str(bb), ")");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

// Checks what matmul needs of its operands, naming the shapes the user passed;
// returns the output shape of the (at least 2-D) product of a2 and b2.
Shape check_matmul(const Tensor& a, const Tensor& b, const Shape& a2, const Shape& b2) {
  if (!a.defined() || !b.defined()) fail("matmul", "an operand is an undefined tensor");
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  if (sa.empty() || sb.empty())
    fail("matmul", "both operands need at least one dimension, got shapes ", shape_str(sa), " and ", shape_str(sb));
  if (a.dtype() != b.dtype())
    fail("matmul", "operands must have one dtype, got ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()),
         " (shapes ", shape_str(sa), " and ", shape_str(sb), ")");
  if (!is_floating(a.dtype()))
    fail("matmul", "expects floating-point operands, got ", dtype_name(a.dtype()), " (shapes ", shape_str(sa),
         " and ", shape_str(sb), ")");
  int64_t ka = a2.back(), kb = b2[b2.size() - 2];
  if (ka != kb) fail("matmul", "shapes ", shape_str(sa), " and ", shape_str(sb), " do not align (", ka, " != ", kb, ")");
  Shape out = broadcast_batch(a2, b2, sa, sb);
  out.push_back(a2[a2.size() - 2]);
  out.push_back(b2.back());
  return out;
}

class MatmulPrim final : public Primitive {
 public:
  const char* name() const override { return "matmul"; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in[0].ndim() < 2 || in[1].ndim() < 2)
      fail("matmul", "the primitive takes operands of at least two dimensions, got shapes ",
           shape_str(in[0].shape()), " and ", shape_str(in[1].shape()));
    return {{check_matmul(in[0], in[1], in[0].shape(), in[1].shape()), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::matmul(in[0], in[1], out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::matmul(in[0], in[1], out[0]);
  }
#endif
  // dA = g @ Bᵀ and dB = Aᵀ @ g; the engine sums broadcast batch dimensions away.
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    const Tensor& g = ct[0];
    Tensor ga, gb;
    if (needs[0]) ga = matmul(g, transpose(b, -1, -2));
    if (needs[1]) {
      if (b.ndim() == 2 && a.ndim() > 2) {
        // A weight shared by every batch: one GEMM over all rows, Aᵀ [K, R] @ g [R, N],
        // instead of a [batch, K, N] product that the engine would then sum.
        int64_t k = a.shape(-1), n = g.shape(-1);
        int64_t rows = numel(Shape(a.shape().begin(), a.shape().end() - 1));
        gb = matmul(transpose(reshape(a, {rows, k}), 0, 1), reshape(g, {rows, n}));
      } else {
        gb = matmul(transpose(a, -1, -2), g);
      }
    }
    return {ga, gb};
  }
};

// y = x Wᵀ (+ bias) over the last dimension of x: one GEMM with W read transposed
// and the bias as the GEMM's starting value, so it is added before the rounding.
class LinearPrim final : public Primitive {
 public:
  const char* name() const override { return "linear"; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& x = in[0];
    const Tensor& w = in[1];
    if (x.ndim() < 1 || w.ndim() != 2)
      fail("linear", "expects an input of at least one dimension and a 2-D weight, got shapes ",
           shape_str(x.shape()), " and ", shape_str(w.shape()));
    if (x.dtype() != w.dtype() || (in.size() > 2 && in[2].dtype() != x.dtype()))
      fail("linear", "input, weight and bias must have one dtype, got ", dtype_name(x.dtype()), " and ",
           dtype_name(in.size() > 2 && in[2].dtype() != x.dtype() ? in[2].dtype() : w.dtype()));
    if (!is_floating(x.dtype())) fail("linear", "expects floating-point tensors, got ", dtype_name(x.dtype()));
    if (x.shape(-1) != w.shape(1))
      fail("linear", "input of shape ", shape_str(x.shape()), " does not match weight of shape ",
           shape_str(w.shape()), " (", x.shape(-1), " != ", w.shape(1), ")");
    if (in.size() > 2 && in[2].shape() != Shape{w.shape(0)})
      fail("linear", "bias of shape ", shape_str(in[2].shape()), " does not match weight of shape ",
           shape_str(w.shape()), " (expected [", w.shape(0), "])");
    Shape out(x.shape().begin(), x.shape().end() - 1);
    out.push_back(w.shape(0));
    return {{out, x.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    run(in, out, [](const Tensor& a, const Tensor& b, Tensor& o, const Tensor& bias) { cpu::matmul(a, b, o, bias); });
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    run(in, out, [](const Tensor& a, const Tensor& b, Tensor& o, const Tensor& bias) { cuda::matmul(a, b, o, bias); });
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    const Tensor& x = in[0];
    const Tensor& w = in[1];
    int64_t n_in = w.shape(1), n_out = w.shape(0);
    int64_t rows = numel(Shape(x.shape().begin(), x.shape().end() - 1));
    Tensor g2 = reshape(ct[0], {rows, n_out});
    std::vector<Tensor> grads(in.size());
    if (needs[0]) grads[0] = reshape(matmul(g2, w), x.shape());                           // g W
    if (needs[1]) grads[1] = matmul(transpose(g2, 0, 1), reshape(x, {rows, n_in}));      // gᵀ x
    if (in.size() > 2 && needs[2]) grads[2] = sum(g2, {0});
    return grads;
  }

 private:
  // x @ w^T as a product of views (strided_view only reinterprets metadata, on
  // any device): w read transposed in place, a 1-D x as a one-row matrix.
  template <typename Matmul>
  static void run(const std::vector<Tensor>& in, std::vector<Tensor>& out, Matmul matmul) {
    const Tensor& x = in[0];
    const Tensor& w = in[1];
    int64_t n_in = w.shape(1), n_out = w.shape(0);
    Tensor wt = cpu::strided_view(w, {n_in, n_out}, {w.strides()[1], w.strides()[0]});
    Tensor xv = x, ov = out[0];
    if (x.ndim() == 1) {  // a single row; the kernel wants matrices
      xv = cpu::strided_view(x, {1, n_in}, {n_in, x.strides()[0]});
      ov = cpu::strided_view(out[0], {1, n_out}, {n_out, 1});
    }
    matmul(xv, wt, ov, in.size() > 2 ? in[2] : Tensor());
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) fail("matmul", "an operand is an undefined tensor");
  if (a.ndim() == 0 || b.ndim() == 0)
    fail("matmul", "both operands need at least one dimension, got shapes ", shape_str(a.shape()), " and ",
         shape_str(b.shape()));
  // NumPy promotion: a vector on the left is a row [1, K], on the right a column [K, 1].
  Tensor a2 = a.ndim() == 1 ? unsqueeze(a, 0) : a;
  Tensor b2 = b.ndim() == 1 ? unsqueeze(b, 1) : b;
  check_matmul(a, b, a2.shape(), b2.shape());  // errors name the shapes as passed
  Tensor out = apply1(make_prim<MatmulPrim>(), {a2, b2});
  if (a.ndim() == 1) out = squeeze(out, {-2});
  if (b.ndim() == 1) out = squeeze(out, {-1});
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (!x.defined() || !weight.defined()) fail("linear", "input and weight must be defined tensors");
  if (bias.defined()) return apply1(make_prim<LinearPrim>(), {x, weight, bias});
  return apply1(make_prim<LinearPrim>(), {x, weight});
}

void register_linalg_primitives(PrimitiveRegistry& r) {
  r.add("matmul", {2, 2}, [](const Attrs&) { return make_prim<MatmulPrim>(); });
  r.add("linear", {2, 3}, [](const Attrs&) { return make_prim<LinearPrim>(); });
}

}  // namespace ember
