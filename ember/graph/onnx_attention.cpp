// ONNX mappings of the fused transformer primitives (opset 17):
//   scaled_dot_product_attention -> MatMul, Mul(scale), Add(causal mask), Softmax, MatMul
//   layer_norm                   -> LayerNormalization
//   rms_norm                     -> x * 1/sqrt(mean(x^2) + eps) * weight (no opset-17 operator)
// Their contracts are in ember/ops/attention_op.cpp and ember/ops/norm_ops.cpp.
#include <limits>
#include <vector>

#include "ember/core/error.h"
#include "ember/graph/onnx_ops.h"
#include "ember/ops/creation.h"

namespace ember::graph::onnx_detail {
namespace {

constexpr const char* kOp = "onnx export";

// [T, S] additive mask: 0 where query t may see key s (s <= t + S - T, the last
// query aligned with the last key, as the primitive's causal mask), -inf elsewhere.
std::string causal_mask(OnnxBuilder& b, int64_t T, int64_t S, DType dt) {
  std::string key = "causal_mask:" + std::to_string(T) + "x" + std::to_string(S) + ":" + dtype_name(dt);
  return b.cached(key, [&] {
    std::vector<double> v(size_t(T * S));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < S; ++s)
        v[size_t(t * S + s)] = s <= t + (S - T) ? 0.0 : -std::numeric_limits<double>::infinity();
    return b.initializer("causal_mask", tensor(v, {T, S}, dt));
  });
}

}  // namespace

// q [B, H, T, D], k and v [B, Hkv, S, D] -> out [B, H, T, D] and lse [B, H, T].
// With grouped-query attention (G = H / Hkv > 1) the query heads are viewed as
// [B, Hkv, G, T, D] and k, v as [B, Hkv, 1, S, D]: MatMul broadcasts each kv
// head over its G query heads, which is what the primitive's head repetition
// computes, without materialising the repeated k and v.
void emit_attention(OnnxNodeContext& c) {
  OnnxBuilder& b = c.b;
  const Shape &qs = c.in_spec(0).shape, &ks = c.in_spec(1).shape;
  const DType dt = c.in_spec(0).dtype;
  const int64_t B = qs[0], H = qs[1], T = qs[2], D = qs[3], Hkv = ks[1], S = ks[2];
  const int64_t G = H / Hkv;
  const bool causal = c.attr_int("causal") != 0;
  const double scale = c.attr_double("scale");
  const std::string& y = c.out[0];

  std::string q = c.in[0], k = c.in[1], v = c.in[2];
  std::vector<int64_t> kt_perm{0, 1, 3, 2};
  if (G > 1) {
    q = b.op("Reshape", {q, b.const_i64({B, Hkv, G, T, D})}, {}, y + "_q");
    k = b.op("Reshape", {k, b.const_i64({B, Hkv, 1, S, D})}, {}, y + "_k");
    v = b.op("Reshape", {v, b.const_i64({B, Hkv, 1, S, D})}, {}, y + "_v");
    kt_perm = {0, 1, 2, 4, 3};
  }
  std::string kt = b.op("Transpose", {k}, {attr_ints("perm", kt_perm)}, y + "_kt");
  std::string scores = b.op("MatMul", {q, kt}, {}, y + "_scores");
  scores = b.op("Mul", {scores, b.const_scalar(scale, dt)}, {}, y + "_scaled");
  if (causal) scores = b.op("Add", {scores, causal_mask(b, T, S, dt)}, {}, y + "_masked");
  std::string p = b.op("Softmax", {scores}, {attr_i("axis", -1)}, y + "_probs");
  if (G > 1)
    b.node("Reshape", {b.op("MatMul", {p, v}, {}, y + "_grouped"), b.const_i64({B, H, T, D})}, {y});
  else
    b.node("MatMul", {p, v}, {y});

  if (c.out.size() > 1 && c.used[1]) {  // the logsumexp of each score row (used by training graphs)
    std::string lse = b.op("ReduceLogSumExp", {scores}, {attr_ints("axes", {-1}), attr_i("keepdims", 0)}, c.out[1] + "_lse");
    if (G > 1) lse = b.op("Reshape", {lse, b.const_i64({B, H, T})}, {}, c.out[1] + "_heads");
    emit_cast_to(b, lse, dt, c.out_spec(1).dtype, c.out[1]);
  }
}

// Inputs x [..., C], then weight [C] and bias [C] when the attributes say so.
// Outputs y, then (layer_norm) mean and rstd, or (rms_norm) rstd, shaped x.shape[:-1].
void emit_norm(OnnxNodeContext& c, bool rms) {
  OnnxBuilder& b = c.b;
  const TensorSpec& xs = c.in_spec(0);
  const int64_t C = xs.shape.back();
  const double eps = c.attr_double("eps");
  const bool has_weight = c.attr_int("weight") != 0, has_bias = c.attr_int("bias") != 0;
  const std::string weight = has_weight ? c.in[1] : std::string();
  const std::string bias = has_bias ? c.in[has_weight ? 2 : 1] : std::string();
  const std::string& y = c.out[0];
  const Shape rows(xs.shape.begin(), xs.shape.end() - 1);
  // A statistic computed as [..., 1] in the input's dtype -> the output's [...] and dtype.
  auto stat_out = [&](const std::string& stat, DType have, size_t k) {
    std::string r = b.op("Reshape", {stat, b.const_i64(rows)}, {}, c.out[k] + "_rows");
    emit_cast_to(b, r, have, c.out_spec(k).dtype, c.out[k]);
  };

  if (!rms) {
    std::string scale = weight;
    if (!has_weight) {
      std::string key = "ones:" + std::to_string(C) + ":" + dtype_name(xs.dtype);
      scale = b.cached(key, [&] { return b.initializer("norm_ones", full({C}, 1.0, xs.dtype)); });
    }
    std::vector<std::string> in{c.in[0], scale};
    if (has_bias) in.push_back(bias);
    const bool stats = c.used.size() > 1 && (c.used[1] || c.used[2]);
    std::vector<std::string> out{y};
    if (stats) out.push_back(b.fresh(y + "_mean")), out.push_back(b.fresh(y + "_rstd"));
    // stash_type 1: statistics in float32, as ember's kernel computes them for float32 inputs.
    b.node("LayerNormalization", in, out, {attr_i("axis", -1), attr_f("epsilon", eps), attr_i("stash_type", 1)});
    if (stats) {
      if (c.used[1]) stat_out(out[1], DType::f32, 1);
      if (c.used[2]) stat_out(out[2], DType::f32, 2);
    }
    return;
  }

  const DType dt = xs.dtype;
  std::string x = c.in[0];
  std::string ms = b.op("ReduceMean", {b.op("Mul", {x, x}, {}, y + "_sq")}, {attr_ints("axes", {-1}), attr_i("keepdims", 1)},
                        y + "_meansq");
  std::string rstd = b.op("Reciprocal", {b.op("Sqrt", {b.op("Add", {ms, b.const_scalar(eps, dt)}, {}, y + "_var")}, {}, y + "_rms")},
                          {}, y + "_rstd");
  if (!has_weight && !has_bias) {
    b.node("Mul", {x, rstd}, {y});
  } else {
    std::string normed = b.op("Mul", {x, rstd}, {}, y + "_normed");
    if (has_weight && has_bias)
      b.node("Add", {b.op("Mul", {normed, weight}, {}, y + "_weighted"), bias}, {y});
    else if (has_weight)
      b.node("Mul", {normed, weight}, {y});
    else
      b.node("Add", {normed, bias}, {y});
  }
  if (c.used.size() > 1 && c.used[1]) stat_out(rstd, dt, 1);
}

}  // namespace ember::graph::onnx_detail
