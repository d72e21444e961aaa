// fused_qkv_attention (attention on a fused [B, T, (H + 2 Hkv) D] projection):
// the fused primitive's output and the gradient of the projection equal, bit
// for bit, those of the plain form (heads split by views, scaled dot-product
// attention, heads merged) for float32 and float64, grouped-query and full
// attention, causal or not; without gradients it is the plain form; float64
// gradient checks of first and second order; argument errors.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/ember.h"
#include "test_util.h"

namespace ember {
namespace {

Tensor rnd(const Shape& shape, uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return randn(shape, dtype, Device::cpu(), &gen);
}

// The plain form, written out here so that it shares no code with the op.
Tensor plain(const Tensor& qkv, int64_t H, int64_t Hkv, bool causal) {
  const int64_t B = qkv.shape(0), T = qkv.shape(1), D = qkv.shape(2) / (H + 2 * Hkv);
  auto heads = [&](int64_t first, int64_t count) {
    return transpose(reshape(narrow(qkv, 2, first * D, count * D), {B, T, count, D}), 1, 2);
  };
  Tensor y = scaled_dot_product_attention(heads(0, H), heads(H, Hkv), heads(H + Hkv, Hkv), causal);
  return reshape(transpose(y, 1, 2), {B, T, H * D});
}

struct Case {
  int64_t B, T, H, Hkv, D;
  bool causal;
};

TEST(FusedQkvAttention, EqualsThePlainFormBitForBit) {
  const Case cases[] = {{2, 90, 4, 2, 16, true}, {1, 130, 6, 6, 64, true}, {2, 33, 2, 1, 8, false}};
  for (DType dtype : {DType::f32, DType::f64})
    for (const Case& c : cases) {
      SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " T=" << c.T << " H=" << c.H << " Hkv=" << c.Hkv
                                      << " causal=" << c.causal);
      const Tensor qkv0 = rnd({c.B, c.T, (c.H + 2 * c.Hkv) * c.D}, 1, dtype);
      const Tensor g = rnd({c.B, c.T, c.H * c.D}, 2, dtype);
      std::vector<double> y[2], dqkv[2];
      for (int pass = 0; pass < 2; ++pass) {
        Tensor qkv = clone(qkv0).requires_grad_();
        Tensor out = pass == 0 ? fused_qkv_attention(qkv, c.H, c.Hkv, c.causal) : plain(qkv, c.H, c.Hkv, c.causal);
        ASSERT_EQ(out.shape(), (Shape{c.B, c.T, c.H * c.D}));
        out.backward(g);
        y[pass] = out.to_vector<double>();
        dqkv[pass] = qkv.grad().to_vector<double>();
      }
      EXPECT_EQ(y[0], y[1]);
      EXPECT_EQ(dqkv[0], dqkv[1]);
      // Without gradients: the plain form's values.
      GradModeGuard off(false);
      EXPECT_EQ(fused_qkv_attention(qkv0, c.H, c.Hkv, c.causal).to_vector<double>(), y[1]);
    }
}

TEST(FusedQkvAttention, Gradcheck) {
  for (bool causal : {true, false}) {
    GradcheckResult r = gradcheck(
        [causal](const std::vector<Tensor>& in) { return fused_qkv_attention(in[0], 2, 1, causal); },
        {rnd({2, 5, 4 * 3}, 3)});
    EXPECT_TRUE(r.ok) << "causal=" << causal << ": " << r.message;
  }
}

TEST(FusedQkvAttention, DoubleBackward) {
  for (bool causal : {true, false}) {
    // Second derivatives of seed . d attention / d qkv, and with respect to the seed.
    auto fn = [causal](const std::vector<Tensor>& in) {
      GradModeGuard on(true);
      Tensor y = fused_qkv_attention(in[0], 2, 1, causal);
      return grad({y}, {in[0]}, {in[1]}, false, true)[0];
    };
    GradcheckResult r = gradcheck(fn, {rnd({1, 4, 4 * 3}, 4), rnd({1, 4, 2 * 3}, 5)}, 1e-6, 1e-5, 1e-4);
    EXPECT_TRUE(r.ok) << "causal=" << causal << ": " << r.message;
  }
}

TEST(FusedQkvAttention, Errors) {
  EXPECT_ERROR(fused_qkv_attention(zeros({4, 24}), 2, 1), "[qkv_attention] expects qkv [B, T, (H + 2 Hkv) D], got ");
  EXPECT_ERROR(fused_qkv_attention(zeros({1, 4, 25}), 2, 1),
               "[qkv_attention] the last dimension of qkv (25) is not (n_head + 2 n_kv_head) = 4 heads of one size");
  EXPECT_ERROR(fused_qkv_attention(zeros({1, 4, 24}), 3, 2),
               "[qkv_attention] n_head (3) must be a positive multiple of n_kv_head (2)");
  EXPECT_ERROR(fused_qkv_attention(zeros({1, 4, 24}), 2, 1, true, NAN), "[qkv_attention] scale must be finite");
  EXPECT_ERROR(fused_qkv_attention(Tensor(), 2, 1), "[qkv_attention] qkv is an undefined tensor");
}

}  // namespace
}  // namespace ember
