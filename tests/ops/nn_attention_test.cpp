// Tests for the fused scaled_dot_product_attention: forward values and
// gradients against a composite reference built from elementwise ops,
// reductions and softmax (softmax(q k^T scale + mask) v), hand values, causal
// masking with T < S (KV-cache decoding), grouped-query attention, blocks
// larger than the kernel's tiles and sizes around them, strided head views,
// float64 gradient checks of first and second order, and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ember/ember.h"

namespace ember {
namespace {

Tensor rnd(const Shape& shape, uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return randn(shape, dtype, Device::cpu(), &gen);
}

void expect_close(const Tensor& a, const Tensor& b, double tol) {
  ASSERT_EQ(a.shape(), b.shape());
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], tol) << "element " << i;
}

// Batched products by broadcasting, so the reference does not share code with
// the fused kernel: [.., T, D] x [.., S, D] -> [.., T, S] and [.., T, S] x [.., S, D] -> [.., T, D].
Tensor bmm_nt(const Tensor& a, const Tensor& b) { return sum(unsqueeze(a, -2) * unsqueeze(b, -3), {-1}); }
Tensor bmm_nn(const Tensor& p, const Tensor& v) { return sum(unsqueeze(p, -1) * unsqueeze(v, -3), {-2}); }

Tensor expand_heads(const Tensor& kv, int64_t H) {
  const Shape& s = kv.shape();
  int64_t G = H / s[1];
  return reshape(expand(unsqueeze(kv, 2), {s[0], s[1], G, s[2], s[3]}), {s[0], H, s[2], s[3]});
}

Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  int64_t H = q.shape(1), T = q.shape(2), S = k.shape(2);
  Tensor scores = bmm_nt(q, expand_heads(k, H)) * scale;
  if (causal) {
    Tensor rows = unsqueeze(arange(0, double(T), 1, DType::i64) + double(S - T), 1);
    Tensor cols = unsqueeze(arange(0, double(S), 1, DType::i64), 0);
    scores = where(ge(rows, cols), scores, -INFINITY);
  }
  return bmm_nn(softmax(scores, -1), expand_heads(v, H));
}

struct Case {
  int64_t B, H, Hkv, T, S, D;
  bool causal;
};

TEST(NnAttention, HandValues) {
  Tensor q = tensor({1, 0}, {1, 1, 1, 2}, DType::f64);
  Tensor k = tensor({1, 0, 0, 1}, {1, 1, 2, 2}, DType::f64);
  Tensor v = tensor({1, 2, 3, 4}, {1, 1, 2, 2}, DType::f64);
  double p0 = std::exp(1.0) / (std::exp(1.0) + 1.0), p1 = 1.0 - p0;
  expect_close(scaled_dot_product_attention(q, k, v, false, 1.0), tensor({p0 + 3 * p1, 2 * p0 + 4 * p1}, {1, 1, 1, 2}, DType::f64), 1e-14);
  // Causal with T = 1 < S = 2: the single query is the last one and sees both keys.
  expect_close(scaled_dot_product_attention(q, k, v, true, 1.0), tensor({p0 + 3 * p1, 2 * p0 + 4 * p1}, {1, 1, 1, 2}, DType::f64), 1e-14);
  // With T = S = 2 causal, the first query sees only the first key.
  Tensor q2 = tensor({1, 0, 1, 0}, {1, 1, 2, 2}, DType::f64);
  std::vector<double> o = scaled_dot_product_attention(q2, k, v, true, 1.0).to_vector<double>();
  EXPECT_NEAR(o[0], 1.0, 1e-14);
  EXPECT_NEAR(o[1], 2.0, 1e-14);
  EXPECT_NEAR(o[2], p0 + 3 * p1, 1e-14);
}

TEST(NnAttention, MatchesReference) {
  const Case cases[] = {{2, 4, 2, 5, 5, 4, true},  {2, 4, 2, 5, 5, 4, false}, {1, 2, 1, 3, 7, 4, true},
                        {1, 3, 3, 1, 6, 8, true},  {2, 2, 1, 4, 4, 3, false}, {1, 1, 1, 130, 150, 16, true},
                        {1, 2, 1, 70, 70, 8, false}};
  for (const Case& c : cases) {
    for (DType dt : {DType::f64, DType::f32}) {
      Tensor q = rnd({c.B, c.H, c.T, c.D}, 1, dt), k = rnd({c.B, c.Hkv, c.S, c.D}, 2, dt),
             v = rnd({c.B, c.Hkv, c.S, c.D}, 3, dt);
      double scale = 1.0 / std::sqrt(double(c.D));
      SCOPED_TRACE(testing::Message() << "T=" << c.T << " S=" << c.S << " H=" << c.H << " Hkv=" << c.Hkv
                                      << " causal=" << c.causal << " " << dtype_name(dt));
      expect_close(scaled_dot_product_attention(q, k, v, c.causal), reference(q, k, v, c.causal, scale),
                   dt == DType::f64 ? 1e-12 : 2e-5);
    }
  }
}

// Gradients in float32 on shapes that span several query and key blocks, with
// one kv head (the backward splits key blocks across threads) and with GQA.
TEST(NnAttention, GradientsMatchReferenceAcrossBlocks) {
  const Case cases[] = {{1, 2, 1, 100, 100, 16, true}, {2, 4, 2, 65, 130, 8, true}, {1, 2, 2, 70, 90, 8, false},
                        {1, 2, 1, 65, 65, 4, false}};  // the last blocks hold one query and one key
  for (const Case& c : cases) {
    Tensor q0 = rnd({c.B, c.H, c.T, c.D}, 4, DType::f32), k0 = rnd({c.B, c.Hkv, c.S, c.D}, 5, DType::f32),
           v0 = rnd({c.B, c.Hkv, c.S, c.D}, 6, DType::f32), g = rnd({c.B, c.H, c.T, c.D}, 7, DType::f32);
    double scale = 0.3;
    std::vector<Tensor> fused, ref;
    for (int pass = 0; pass < 2; ++pass) {
      Tensor q = clone(q0).requires_grad_(), k = clone(k0).requires_grad_(), v = clone(v0).requires_grad_();
      Tensor o = pass == 0 ? scaled_dot_product_attention(q, k, v, c.causal, scale) : reference(q, k, v, c.causal, scale);
      o.backward(g);
      (pass == 0 ? fused : ref) = {q.grad(), k.grad(), v.grad()};
    }
    for (int i = 0; i < 3; ++i) expect_close(fused[size_t(i)], ref[size_t(i)], 2e-4);
  }
}

// Sizes around the kernel's 64-row blocks and 16-row diagonal groups: head
// sizes that are not a multiple of the 8-float vectors (1, 5, 24, 72), causal
// offsets that are not a multiple of a group (S - T = 133), more queries than
// keys (the first queries see none), grouped-query attention; forward and
// gradients in float32 against the composite reference, forward in float64.
TEST(NnAttention, BlockEdgesAndHeadSizes) {
  const Case cases[] = {{1, 2, 1, 150, 150, 24, true}, {1, 3, 1, 67, 200, 72, true}, {1, 2, 2, 200, 70, 5, true},
                        {2, 2, 1, 129, 129, 1, true},  {1, 1, 1, 64, 64, 64, true},  {1, 2, 1, 80, 97, 40, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " S=" << c.S << " H=" << c.H << " Hkv=" << c.Hkv
                                    << " D=" << c.D << " causal=" << c.causal);
    const double scale = 1.0 / std::sqrt(double(c.D));
    // With T > S the first T - S queries see no key: the kernels give them zeros (and zero
    // gradients), the composite reference NaN, so it runs on the other queries only (for
    // which the causal offset is then 0).
    const int64_t first = c.causal ? std::max<int64_t>(0, c.T - c.S) : 0, seen = c.T - first;
    auto tail = [&](const Tensor& x) { return narrow(x, 2, first, seen); };
    auto head_is_zero = [&](const Tensor& x) {
      if (first > 0) expect_close(narrow(x, 2, 0, first), zeros({c.B, c.H, first, c.D}, x.dtype()), 0.0);
    };
    Tensor q64 = rnd({c.B, c.H, c.T, c.D}, 21), k64 = rnd({c.B, c.Hkv, c.S, c.D}, 22),
           v64 = rnd({c.B, c.Hkv, c.S, c.D}, 23);
    Tensor o64 = scaled_dot_product_attention(q64, k64, v64, c.causal);
    expect_close(tail(o64), reference(tail(q64), k64, v64, c.causal, scale), 1e-12);
    head_is_zero(o64);
    Tensor q0 = cast(q64, DType::f32), k0 = cast(k64, DType::f32), v0 = cast(v64, DType::f32);
    Tensor g = rnd({c.B, c.H, c.T, c.D}, 24, DType::f32);
    std::vector<Tensor> fused, ref;
    for (int pass = 0; pass < 2; ++pass) {
      Tensor q = clone(pass == 0 ? q0 : tail(q0)).requires_grad_(), k = clone(k0).requires_grad_(),
             v = clone(v0).requires_grad_();
      if (pass == 0) {
        Tensor o = scaled_dot_product_attention(q, k, v, c.causal);
        expect_close(tail(o), reference(tail(q0), k0, v0, c.causal, scale), 2e-5);
        head_is_zero(o);
        o.backward(g);
      } else {
        reference(q, k, v, c.causal, scale).backward(tail(g));
      }
      (pass == 0 ? fused : ref) = {q.grad(), k.grad(), v.grad()};
    }
    expect_close(tail(fused[0]), ref[0], 2e-4);
    head_is_zero(fused[0]);
    for (int i = 1; i < 3; ++i) expect_close(fused[size_t(i)], ref[size_t(i)], 2e-4);
  }
}

// q, k and v as the training layer makes them: head views of one fused
// [B, T, (H + 2 Hkv) D] projection, read in place by the kernels. Values and
// gradients equal those of contiguous copies.
TEST(NnAttention, FusedProjectionViewsMatchContiguous) {
  const int64_t B = 2, T = 90, H = 4, Hkv = 2, D = 16;
  Tensor qkv0 = rnd({B, T, (H + 2 * Hkv) * D}, 25, DType::f32), g = rnd({B, H, T, D}, 26, DType::f32);
  auto heads = [&](const Tensor& x, int64_t first, int64_t count) {
    return transpose(reshape(narrow(x, 2, first * D, count * D), {B, T, count, D}), 1, 2);
  };
  std::vector<Tensor> outs[2], grads[2];
  for (int pass = 0; pass < 2; ++pass) {
    Tensor qkv = clone(qkv0).requires_grad_();
    Tensor q = heads(qkv, 0, H), k = heads(qkv, H, Hkv), v = heads(qkv, H + Hkv, Hkv);
    if (pass == 1) q = contiguous(q), k = contiguous(k), v = contiguous(v);
    else ASSERT_FALSE(q.is_contiguous());
    Tensor o = scaled_dot_product_attention(q, k, v, true);
    o.backward(g);
    outs[pass] = {o};
    grads[pass] = {qkv.grad()};
  }
  expect_close(outs[0][0], outs[1][0], 1e-6);
  expect_close(grads[0][0], grads[1][0], 1e-6);
}

TEST(NnAttention, Gradcheck) {
  const Case cases[] = {{1, 2, 1, 3, 3, 4, true}, {2, 2, 2, 4, 4, 4, false}, {1, 2, 1, 3, 5, 4, true},
                        {2, 2, 1, 5, 5, 4, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "B=" << c.B << " Hkv=" << c.Hkv << " T=" << c.T << " S=" << c.S
                                    << " causal=" << c.causal);
    GradcheckResult r = gradcheck(
        [&](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], c.causal); },
        {rnd({c.B, c.H, c.T, c.D}, 8), rnd({c.B, c.Hkv, c.S, c.D}, 9), rnd({c.B, c.Hkv, c.S, c.D}, 10)});
    EXPECT_TRUE(r.ok) << r.message;
  }
}

TEST(NnAttention, DoubleBackward) {
  for (bool causal : {true, false}) {
    // Second derivatives of seed . d attention / d(q, k, v), one gradient at a time.
    for (size_t which = 0; which < 3; ++which) {
      auto fn = [causal, which](const std::vector<Tensor>& in) {
        GradModeGuard on(true);
        Tensor o = scaled_dot_product_attention(in[0], in[1], in[2], causal);
        return grad({o}, {in[0], in[1], in[2]}, {in[3]}, false, true)[which];
      };
      GradcheckResult r = gradcheck(fn, {rnd({1, 2, 3, 4}, 11), rnd({1, 1, 4, 4}, 12), rnd({1, 1, 4, 4}, 13),
                                         rnd({1, 2, 3, 4}, 14)},
                                    1e-6, 1e-5, 1e-4);
      EXPECT_TRUE(r.ok) << "causal=" << causal << " grad " << which << ": " << r.message;
    }
  }
}

TEST(NnAttention, QueriesThatSeeNoKeyGiveZeros) {
  // Causal with T > S: query t sees keys s <= t - 2, so the first two see none.
  Tensor q = rnd({1, 1, 4, 4}, 15).requires_grad_(), k = rnd({1, 1, 2, 4}, 16), v = rnd({1, 1, 2, 4}, 17);
  Tensor o = scaled_dot_product_attention(q, k, v, true);
  std::vector<double> ov = o.to_vector<double>();
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(ov[i], 0.0);
  for (size_t i = 8; i < 16; ++i) EXPECT_TRUE(std::isfinite(ov[i]));
  o.backward(ones_like(o));
  std::vector<double> gq = q.grad().to_vector<double>();
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(gq[i], 0.0);
}

TEST(NnAttention, Bf16AndNonContiguousInputs) {
  Tensor q = rnd({1, 2, 9, 8}, 18, DType::f32), k = rnd({1, 2, 9, 8}, 19, DType::f32), v = rnd({1, 2, 9, 8}, 20, DType::f32);
  Tensor want = scaled_dot_product_attention(q, k, v, true);
  Tensor oh = scaled_dot_product_attention(cast(q, DType::bf16), cast(k, DType::bf16), cast(v, DType::bf16), true);
  EXPECT_EQ(oh.dtype(), DType::bf16);
  expect_close(cast(oh, DType::f32), want, 0.05);
  // [B, T, H, D] storage viewed as [B, H, T, D], as attention layers produce it.
  Tensor qt = transpose(clone(transpose(q, 1, 2)), 1, 2);
  ASSERT_FALSE(qt.is_contiguous());
  expect_close(scaled_dot_product_attention(qt, k, v, true), want, 1e-6);
}

TEST(NnAttention, Errors) {
  auto err = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string op = "[scaled_dot_product_attention]";
  Tensor q = zeros({1, 4, 3, 8}), k = zeros({1, 2, 5, 8});
  EXPECT_NE(err([&] { scaled_dot_product_attention(zeros({4, 3, 8}), k, k); }).find(op), std::string::npos);
  EXPECT_NE(err([&] { scaled_dot_product_attention(q, zeros({1, 3, 5, 8}), zeros({1, 3, 5, 8})); }).find("multiple"),
            std::string::npos);
  EXPECT_NE(err([&] { scaled_dot_product_attention(q, zeros({1, 2, 5, 4}), zeros({1, 2, 5, 4})); }).find(op),
            std::string::npos);
  EXPECT_NE(err([&] { scaled_dot_product_attention(q, k, zeros({1, 2, 6, 8})); }).find(op), std::string::npos);
  EXPECT_NE(err([&] { scaled_dot_product_attention(q, cast(k, DType::f64), k); }).find("one dtype"), std::string::npos);
  EXPECT_NE(err([&] { scaled_dot_product_attention(zeros({2, 4, 3, 8}), k, k); }).find(op), std::string::npos);
  EXPECT_NE(err([&] { scaled_dot_product_attention(q, k, k, true, NAN); }).find(op), std::string::npos);
  EXPECT_NE(err([&] { scaled_dot_product_attention(cast(q, DType::i64), cast(k, DType::i64), cast(k, DType::i64)); })
                .find(op),
            std::string::npos);
}

}  // namespace
}  // namespace ember
