// scaled_dot_product_attention as one fused primitive (flash attention on the
// CPU, see backend/cpu/attention_kernels.h) with a fused backward primitive.
//
// The forward primitive outputs the attention result and the per-row
// logsumexp; AttentionBackward recomputes score blocks from them. Its own vjp
// (second derivatives) is the reverse-mode derivative of the composite form
//   P = softmax(scale q k^T + mask), O = P v
// written in ordinary ops (matmul, softmax), which does materialise P.
//
// fused_qkv_attention's pair (QkvAttentionPrim, QkvAttentionBackwardPrim) runs
// the same kernels on a fused [B, T, (H + 2 Hkv) D] projection: q, k and v are
// strided views of it, the output is written merged ([B, T, H D]), and the
// backward writes dq, dk and dv into one gradient of the projection. In
// ordinary ops the split into heads costs a copy of the merged output forward
// and, backward, three zero-filled slice gradients plus two adds per layer.
#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/backend/cpu/attention_kernels.h"
#include "ember/backend/cpu/index_kernels.h"
#include "ember/backend/cpu/matmul_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/attention_kernels.h"
#endif
#include "ember/ops/primitive_registry.h"
#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/ops/creation.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/linalg.h"
#include "ember/ops/nn_ops.h"
#include "ember/ops/index_ops.h"
#include "ember/ops/reduce.h"
#include "ember/ops/shape_ops.h"

namespace ember {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

DType stats_dtype(DType x) { return x == DType::f64 ? DType::f64 : DType::f32; }

cpu::AttentionDims dims_of(const Tensor& q, const Tensor& k, bool causal, double scale) {
  cpu::AttentionDims d;
  d.B = q.shape(0);
  d.H = q.shape(1);
  d.T = q.shape(2);
  d.D = q.shape(3);
  d.Hkv = k.shape(1);
  d.S = k.shape(2);
  d.causal = causal;
  d.scale = scale;
  return d;
}

// [B, Hkv, S, D] -> [B, H, S, D], each kv head repeated for its H / Hkv query heads.
Tensor expand_heads(const Tensor& kv, int64_t H) {
  const Shape& s = kv.shape();
  int64_t G = H / s[1];
  if (G == 1) return kv;
  Tensor e = expand(unsqueeze(kv, 2), {s[0], s[1], G, s[2], s[3]});
  return reshape(e, {s[0], H, s[2], s[3]});
}

// The adjoint of expand_heads: sums each group of query heads onto its kv head.
Tensor sum_heads(const Tensor& x, int64_t Hkv) {
  const Shape& s = x.shape();
  int64_t G = s[1] / Hkv;
  if (G == 1) return x;
  return sum(reshape(x, {s[0], Hkv, G, s[2], s[3]}), {2});
}

// [T, S] bool: query t may see key s when s <= t + (S - T).
Tensor causal_mask(int64_t T, int64_t S) {
  Tensor rows = unsqueeze(arange(0, double(T), 1, DType::i64) + double(S - T), 1);
  Tensor cols = unsqueeze(arange(0, double(S), 1, DType::i64), 0);
  return ge(rows, cols);
}

Tensor mT(const Tensor& x) { return transpose(x, -1, -2); }

class AttentionPrim final : public Primitive {
 public:
  AttentionPrim(bool causal, double scale) : causal_(causal), scale_(scale) {}
  const char* name() const override { return kOp; }
  Attrs attrs() const override { return {{"causal", int64_t(causal_)}, {"scale", scale_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor &q = in[0], &k = in[1], &v = in[2];
    if (q.ndim() != 4 || k.ndim() != 4 || v.ndim() != 4)
      fail(kOp, "expects q [B, H, T, D] and k, v [B, Hkv, S, D], got q ", shape_str(q.shape()), ", k ",
           shape_str(k.shape()), ", v ", shape_str(v.shape()));
    if (!is_floating(q.dtype())) fail(kOp, "expects floating-point tensors, got ", dtype_name(q.dtype()));
    if (k.dtype() != q.dtype() || v.dtype() != q.dtype())
      fail(kOp, "q, k and v must have one dtype, got ", dtype_name(q.dtype()), ", ", dtype_name(k.dtype()), ", ",
           dtype_name(v.dtype()));
    if (k.shape() != v.shape())
      fail(kOp, "k ", shape_str(k.shape()), " and v ", shape_str(v.shape()), " must have the same shape");
    if (k.shape(0) != q.shape(0) || k.shape(3) != q.shape(3))
      fail(kOp, "q ", shape_str(q.shape()), " and k ", shape_str(k.shape()),
           " must agree in batch size and head dimension");
    if (k.shape(1) < 1 || q.shape(1) % k.shape(1) != 0)
      fail(kOp, "the number of query heads (", q.shape(1), ") must be a multiple of the number of kv heads (",
           k.shape(1), ")");
    Shape lse(q.shape().begin(), q.shape().end() - 1);
    return {{q.shape(), q.dtype()}, {lse, stats_dtype(q.dtype())}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    // The kernels read q, k, v through their strides: the layer's head views of one
    // fused projection are not copied.
    cpu::attention_forward(dims_of(in[0], in[1], causal_, scale_), in[0], in[1], in[2], out[0], out[1]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::attention_forward(dims_of(in[0], in[1], causal_, scale_), in[0], in[1], in[2], out[0], out[1]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>& needs) const override;

 private:
  bool causal_;
  double scale_;
};

// Inputs: q, k, v, o, lse, do. Outputs: dq, dk, dv.
class AttentionBackwardPrim final : public Primitive {
 public:
  AttentionBackwardPrim(bool causal, double scale) : causal_(causal), scale_(scale) {}
  const char* name() const override { return "scaled_dot_product_attention_backward"; }
  Attrs attrs() const override { return {{"causal", int64_t(causal_)}, {"scale", scale_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const Tensor& q = in[0];
    const Tensor& dout = in[5];
    if (dout.shape() != q.shape() || dout.dtype() != q.dtype())
      fail(name(), "output gradient ", dtype_name(dout.dtype()), " ", shape_str(dout.shape()),
           " does not match the output ", dtype_name(q.dtype()), " ", shape_str(q.shape()));
    return {{q.shape(), q.dtype()}, {in[1].shape(), q.dtype()}, {in[2].shape(), q.dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    Tensor lse = in[4];  // the kernels index it as a flat [B, H, T]
    if (!lse.is_contiguous()) {
      lse = Tensor::empty(in[4].shape(), in[4].dtype(), in[4].device());
      cpu::copy_cast(in[4], lse);
    }
    cpu::attention_backward(dims_of(in[0], in[1], causal_, scale_), in[0], in[1], in[2], in[3], lse, in[5], out[0],
                            out[1], out[2]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::attention_backward(dims_of(in[0], in[1], causal_, scale_), in[0], in[1], in[2], in[3], in[4], in[5],
                             out[0], out[1], out[2]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>& needs) const override;

 private:
  bool causal_;
  double scale_;
};

std::vector<Tensor> AttentionPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                                       const std::vector<Tensor>& ct, const std::vector<bool>&) const {
  if (!ct[0].defined()) return {Tensor(), Tensor(), Tensor()};  // lse is internal
  return ember::apply(std::make_shared<AttentionBackwardPrim>(causal_, scale_), {in[0], in[1], in[2], out[0], out[1], ct[0]});
}

// With kx, vx the kv heads expanded to H heads, S = scale q kx^T (+ mask),
// P = softmax(S), the backward computes dP = dO vx^T, dS = P (dP - rowsum(dP P)),
//   dq = scale dS kx,  dk = scale dS^T q,  dv = P^T dO  (dk, dv summed per group).
// Below, u_X is the cotangent of X, propagated back through those lines.
std::vector<Tensor> AttentionBackwardPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&,
                                               const std::vector<Tensor>& ct, const std::vector<bool>& needs) const {
  const Tensor &q = in[0], &k = in[1], &v = in[2], &dout = in[5];
  const int64_t H = q.shape(1), Hkv = k.shape(1);
  const std::vector<int64_t> last{-1};
  Tensor kx = expand_heads(k, H), vx = expand_heads(v, H);
  Tensor scores = matmul(q, mT(kx)) * scale_;
  Tensor mask;
  if (causal_) {
    mask = causal_mask(q.shape(2), k.shape(2));
    scores = where(mask, scores, -INFINITY);
  }
  Tensor P = softmax(scores, -1);
  // A query that sees no key has an all-masked row (nan softmax); the fused kernels give it zeros.
  if (causal_) P = where(mask, P, 0.0);
  Tensor dP = matmul(dout, mT(vx));
  Tensor dS = P * (dP - sum(dP * P, last, true));

  Tensor u_dS, u_q, u_kx, u_P, u_dO, u_vx;
  auto acc = [](Tensor& slot, const Tensor& t) { slot = slot.defined() ? slot + t : t; };
  if (ct[0].defined()) {
    acc(u_dS, matmul(ct[0], mT(kx)) * scale_);
    acc(u_kx, matmul(mT(dS), ct[0]) * scale_);
  }
  if (ct[1].defined()) {
    Tensor udk = expand_heads(ct[1], H);
    acc(u_dS, matmul(q, mT(udk)) * scale_);
    acc(u_q, matmul(dS, udk) * scale_);
  }
  if (ct[2].defined()) {
    Tensor udv = expand_heads(ct[2], H);
    acc(u_P, matmul(dout, mT(udv)));
    acc(u_dO, matmul(P, udv));
  }
  if (u_dS.defined()) {
    Tensor w = P * u_dS;
    Tensor sw = sum(w, last, true);
    Tensor u_dP = w - P * sw;
    acc(u_P, u_dS * (dP - sum(dP * P, last, true)) - sw * dP);
    acc(u_dO, matmul(u_dP, vx));
    acc(u_vx, matmul(mT(u_dP), dout));
  }
  if (u_P.defined()) {
    Tensor u_S = P * (u_P - sum(u_P * P, last, true)) * scale_;
    acc(u_q, matmul(u_S, kx));
    acc(u_kx, matmul(mT(u_S), q));
  }
  std::vector<Tensor> grads(in.size());
  if (needs[0]) grads[0] = u_q;
  if (needs[1] && u_kx.defined()) grads[1] = sum_heads(u_kx, Hkv);
  if (needs[2] && u_vx.defined()) grads[2] = sum_heads(u_vx, Hkv);
  if (needs[5]) grads[5] = u_dO;
  return grads;
}

// ---- attention on a fused qkv projection ----

constexpr const char* kQkvOp = "qkv_attention";

struct QkvLayout {
  int64_t B, T, H, Hkv, D;
  int64_t width() const { return (H + 2 * Hkv) * D; }
};

QkvLayout qkv_layout(const char* op, const Tensor& qkv, int64_t H, int64_t Hkv) {
  if (qkv.ndim() != 3) fail(op, "expects qkv [B, T, (H + 2 Hkv) D], got ", shape_str(qkv.shape()));
  if (H < 1 || Hkv < 1 || H % Hkv != 0)
    fail(op, "n_head (", H, ") must be a positive multiple of n_kv_head (", Hkv, ")");
  const int64_t W = qkv.shape(2);
  if (W % (H + 2 * Hkv) != 0 || W == 0)
    fail(op, "the last dimension of qkv (", W, ") is not (n_head + 2 n_kv_head) = ", H + 2 * Hkv,
         " heads of one size");
  return {qkv.shape(0), qkv.shape(1), H, Hkv, W / (H + 2 * Hkv)};
}

cpu::AttentionDims qkv_dims(const QkvLayout& l, bool causal, double scale) {
  cpu::AttentionDims d;
  d.B = l.B;
  d.H = l.H;
  d.Hkv = l.Hkv;
  d.T = l.T;
  d.S = l.T;
  d.D = l.D;
  d.causal = causal;
  d.scale = scale;
  return d;
}

// Heads [first, first + count) of a contiguous [B, T, width] tensor as a
// [B, count, T, D] view (no autograd history: kernel side).
Tensor head_view(const Tensor& x, const QkvLayout& l, int64_t width, int64_t first, int64_t count) {
  return cpu::strided_view(x, {l.B, count, l.T, l.D}, {l.T * width, l.D, width, 1}, first * l.D);
}

// The same split in ordinary (differentiable) ops, for second derivatives.
Tensor split_heads(const Tensor& x, const QkvLayout& l, int64_t first, int64_t count) {
  return transpose(reshape(narrow(x, 2, first * l.D, count * l.D), {l.B, l.T, count, l.D}), 1, 2);
}
Tensor merge_heads(const Tensor& x, const QkvLayout& l) {
  return reshape(transpose(x, 1, 2), {l.B, l.T, x.shape(1) * l.D});
}

class QkvAttentionPrim final : public Primitive {
 public:
  QkvAttentionPrim(int64_t n_head, int64_t n_kv_head, bool causal, double scale)
      : n_head_(n_head), n_kv_head_(n_kv_head), causal_(causal), scale_(scale) {}
  const char* name() const override { return kQkvOp; }
  Attrs attrs() const override {
    return {{"n_head", n_head_}, {"n_kv_head", n_kv_head_}, {"causal", int64_t(causal_)}, {"scale", scale_}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const QkvLayout l = qkv_layout(kQkvOp, in[0], n_head_, n_kv_head_);
    if (in[0].dtype() != DType::f32 && in[0].dtype() != DType::f64)
      fail(kQkvOp, "expects float32 or float64, got ", dtype_name(in[0].dtype()));
    return {{{l.B, l.T, l.H * l.D}, in[0].dtype()}, {{l.B, l.H, l.T}, in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    const Tensor qkv = cpu::as_contiguous(in[0]);
    const QkvLayout l = qkv_layout(kQkvOp, qkv, n_head_, n_kv_head_);
    const int64_t W = l.width();
    Tensor o = head_view(out[0], l, l.H * l.D, 0, l.H);
    cpu::attention_forward(qkv_dims(l, causal_, scale_), head_view(qkv, l, W, 0, l.H),
                           head_view(qkv, l, W, l.H, l.Hkv), head_view(qkv, l, W, l.H + l.Hkv, l.Hkv), o, out[1]);
  }
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>& needs) const override;

 private:
  int64_t n_head_, n_kv_head_;
  bool causal_;
  double scale_;
};

// Inputs: qkv, o, lse, do (o and do [B, T, H D]). Output: dqkv.
class QkvAttentionBackwardPrim final : public Primitive {
 public:
  QkvAttentionBackwardPrim(int64_t n_head, int64_t n_kv_head, bool causal, double scale)
      : n_head_(n_head), n_kv_head_(n_kv_head), causal_(causal), scale_(scale) {}
  const char* name() const override { return "qkv_attention_backward"; }
  Attrs attrs() const override {
    return {{"n_head", n_head_}, {"n_kv_head", n_kv_head_}, {"causal", int64_t(causal_)}, {"scale", scale_}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    const QkvLayout l = qkv_layout(name(), in[0], n_head_, n_kv_head_);
    const Shape merged{l.B, l.T, l.H * l.D};
    for (size_t i : {size_t(1), size_t(3)})
      if (in[i].shape() != merged || in[i].dtype() != in[0].dtype())
        fail(name(), i == 1 ? "output " : "output gradient ", dtype_name(in[i].dtype()), " ",
             shape_str(in[i].shape()), " does not match ", dtype_name(in[0].dtype()), " ", shape_str(merged));
    return {{in[0].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    const Tensor qkv = cpu::as_contiguous(in[0]), o = cpu::as_contiguous(in[1]);
    const Tensor lse = cpu::as_contiguous(in[2]), dout = cpu::as_contiguous(in[3]);
    const QkvLayout l = qkv_layout(name(), qkv, n_head_, n_kv_head_);
    const int64_t W = l.width(), HD = l.H * l.D;
    // dq, dk and dv side by side cover every element of dqkv.
    Tensor dq = head_view(out[0], l, W, 0, l.H), dk = head_view(out[0], l, W, l.H, l.Hkv),
           dv = head_view(out[0], l, W, l.H + l.Hkv, l.Hkv);
    cpu::attention_backward(qkv_dims(l, causal_, scale_), head_view(qkv, l, W, 0, l.H),
                            head_view(qkv, l, W, l.H, l.Hkv), head_view(qkv, l, W, l.H + l.Hkv, l.Hkv),
                            head_view(o, l, HD, 0, l.H), lse, head_view(dout, l, HD, 0, l.H), dq, dk, dv);
  }
  // Second derivatives: those of the unfused form, the heads split and
  // merged in ordinary ops around AttentionBackwardPrim's own vjp.
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    std::vector<Tensor> grads(in.size());
    if (!ct[0].defined()) return grads;
    const Tensor& qkv = in[0];
    const QkvLayout l = qkv_layout(name(), qkv, n_head_, n_kv_head_);
    const int64_t H = l.H, Hkv = l.Hkv;
    const std::vector<Tensor> unfused_in{split_heads(qkv, l, 0, H),         split_heads(qkv, l, H, Hkv),
                                         split_heads(qkv, l, H + Hkv, Hkv), split_heads(in[1], l, 0, H),
                                         in[2],                             split_heads(in[3], l, 0, H)};
    const std::vector<Tensor> unfused_ct{split_heads(ct[0], l, 0, H), split_heads(ct[0], l, H, Hkv),
                                         split_heads(ct[0], l, H + Hkv, Hkv)};
    const AttentionBackwardPrim unfused(causal_, scale_);
    std::vector<Tensor> g =
        unfused.vjp(unfused_in, {}, unfused_ct, {needs[0], needs[0], needs[0], false, false, needs[3]});
    if (needs[0]) {
      std::vector<Tensor> parts;
      for (int i = 0; i < 3; ++i) {
        const Tensor& like = unfused_in[size_t(i)];
        parts.push_back(merge_heads(g[size_t(i)].defined() ? g[size_t(i)] : zeros_like(like), l));
      }
      grads[0] = concat(parts, 2);
    }
    if (needs[3] && g[5].defined()) grads[3] = merge_heads(g[5], l);
    return grads;
  }

 private:
  int64_t n_head_, n_kv_head_;
  bool causal_;
  double scale_;
};

std::vector<Tensor> QkvAttentionPrim::vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                                          const std::vector<Tensor>& ct, const std::vector<bool>&) const {
  if (!ct[0].defined()) return {Tensor()};  // lse is internal
  return ember::apply(std::make_shared<QkvAttentionBackwardPrim>(n_head_, n_kv_head_, causal_, scale_),
                      {in[0], out[0], out[1], ct[0]});
}

double default_scale(const char* op, double scale, int64_t head_dim) {
  if (!std::isfinite(scale)) fail(op, "scale must be finite, got ", scale);
  return scale == 0.0 ? 1.0 / std::sqrt(double(std::max<int64_t>(head_dim, 1))) : scale;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  if (!q.defined() || !k.defined() || !v.defined()) fail(kOp, "q, k or v is an undefined tensor");
  if (q.ndim() != 4) fail(kOp, "expects q [B, H, T, D], got ", shape_str(q.shape()));
  return ember::apply(make_prim<AttentionPrim>(causal, default_scale(kOp, scale, q.shape(3))), {q, k, v})[0];
}

Tensor fused_qkv_attention(const Tensor& qkv, int64_t n_head, int64_t n_kv_head, bool causal, double scale) {
  if (!qkv.defined()) fail(kQkvOp, "qkv is an undefined tensor");
  const QkvLayout l = qkv_layout(kQkvOp, qkv, n_head, n_kv_head);
  scale = default_scale(kQkvOp, scale, l.D);
  const bool fused = GradMode::enabled() && qkv.requires_grad() && qkv.device().is_cpu() &&
                     (qkv.dtype() == DType::f32 || qkv.dtype() == DType::f64);
  if (fused) return ember::apply(make_prim<QkvAttentionPrim>(n_head, n_kv_head, causal, scale), {qkv})[0];
  Tensor y = scaled_dot_product_attention(split_heads(qkv, l, 0, n_head), split_heads(qkv, l, n_head, n_kv_head),
                                          split_heads(qkv, l, n_head + n_kv_head, n_kv_head), causal, scale);
  return merge_heads(y, l);
}

void register_attention_primitives(PrimitiveRegistry& r) {
  r.add(kOp, {3, 3}, [](const Attrs& a) {
    return make_prim<AttentionPrim>(attr_int(a, "causal", kOp) != 0, attr_double(a, "scale", kOp));
  });
  r.add(kQkvOp, {1, 1}, [](const Attrs& a) {
    return make_prim<QkvAttentionPrim>(attr_int(a, "n_head", kQkvOp), attr_int(a, "n_kv_head", kQkvOp),
                                       attr_int(a, "causal", kQkvOp) != 0, attr_double(a, "scale", kQkvOp));
  });
}

}  // namespace ember
