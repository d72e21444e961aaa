// Tests for the shape rules in ember/core/shape.h (broadcasting, strides, axis
// normalisation, reduced shapes) and the dtype rules in ember/core/dtype.h
// (promotion table, names, 16-bit float conversions).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ember/ember.h"
#include "test_util.h"

using namespace ember;

namespace {

}  // namespace

TEST(Broadcast, ShapesFollowNumPyRules) {
  EXPECT_EQ(broadcast_shapes({2, 3}, {2, 3}, "t"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({2, 3}, {3}, "t"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({3}, {2, 3}, "t"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({2, 1}, {1, 3}, "t"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({}, {4, 5}, "t"), (Shape{4, 5}));
  EXPECT_EQ(broadcast_shapes({4, 5}, {}, "t"), (Shape{4, 5}));
  EXPECT_EQ(broadcast_shapes({}, {}, "t"), Shape{});
  EXPECT_EQ(broadcast_shapes({5, 1, 4}, {3, 1}, "t"), (Shape{5, 3, 4}));
  EXPECT_EQ(broadcast_shapes({0, 3}, {1, 3}, "t"), (Shape{0, 3}));  // size 0 broadcasts like any size
  EXPECT_EQ(broadcast_shapes({0}, {1}, "t"), (Shape{0}));
  EXPECT_ERROR(broadcast_shapes({2, 3}, {4}, "myop"), "[myop] shapes [2, 3] and [4] cannot be broadcast (dimension 1: 3 vs 4)");
  EXPECT_ERROR(broadcast_shapes({0}, {2}, "t"), "[t]");
  EXPECT_ERROR(broadcast_shapes({2, 1, 3}, {2, 3, 2}, "t"), "[t]");
}

TEST(Broadcast, StridesAreZeroOnBroadcastDims) {
  EXPECT_EQ(broadcast_strides({3}, {1}, {2, 3}), (Strides{0, 1}));
  EXPECT_EQ(broadcast_strides({2, 1}, {1, 1}, {2, 5}), (Strides{1, 0}));
  EXPECT_EQ(broadcast_strides({}, {}, {2, 2}), (Strides{0, 0}));
  EXPECT_EQ(broadcast_strides({4, 3}, {1, 4}, {2, 4, 3}), (Strides{0, 1, 4}));  // keeps a transposed layout
}

TEST(Broadcast, ContiguousStridesNumelShapeStr) {
  EXPECT_EQ(contiguous_strides({2, 3, 4}), (Strides{12, 4, 1}));
  EXPECT_EQ(contiguous_strides({}), Strides{});
  EXPECT_EQ(contiguous_strides({3, 0, 2}), (Strides{2, 2, 1}));  // zero-size dims do not zero the strides
  EXPECT_EQ(numel({2, 3, 4}), 24);
  EXPECT_EQ(numel({}), 1);
  EXPECT_EQ(numel({5, 0}), 0);
  EXPECT_EQ(shape_str({2, 3}), "[2, 3]");
  EXPECT_EQ(shape_str({}), "[]");
}

TEST(Broadcast, AxisNormalisation) {
  EXPECT_EQ(normalize_axis(0, 3, "t"), 0);
  EXPECT_EQ(normalize_axis(-1, 3, "t"), 2);
  EXPECT_EQ(normalize_axis(-3, 3, "t"), 0);
  EXPECT_EQ(normalize_axis(0, 0, "t"), 0);   // a 0-d tensor accepts axis 0 and -1, as in PyTorch
  EXPECT_EQ(normalize_axis(-1, 0, "t"), 0);
  EXPECT_ERROR(normalize_axis(3, 3, "op"), "[op] axis 3 is out of range for a tensor of 3 dimensions");
  EXPECT_ERROR(normalize_axis(-4, 3, "op"), "[op] axis -4 is out of range");
  EXPECT_ERROR(normalize_axis(1, 0, "op"), "[op]");
  EXPECT_ERROR(normalize_axis(-2, 0, "op"), "[op]");
  EXPECT_EQ(normalize_axes({}, 3, "t"), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(normalize_axes({2, -3}, 3, "t"), (std::vector<int>{0, 2}));  // sorted
  EXPECT_ERROR(normalize_axes({1, -2}, 3, "sum"), "[sum] axis repeated in reduction axes");
  EXPECT_ERROR(normalize_axes({5}, 3, "sum"), "[sum] axis 5 is out of range");
}

TEST(Broadcast, ReducedShape) {
  EXPECT_EQ(reduced_shape({2, 3, 4}, {1}, false), (Shape{2, 4}));
  EXPECT_EQ(reduced_shape({2, 3, 4}, {1}, true), (Shape{2, 1, 4}));
  EXPECT_EQ(reduced_shape({2, 3, 4}, {0, 2}, false), (Shape{3}));
  EXPECT_EQ(reduced_shape({2, 3, 4}, {0, 1, 2}, false), Shape{});
  EXPECT_EQ(reduced_shape({2, 3, 4}, {0, 1, 2}, true), (Shape{1, 1, 1}));
  EXPECT_EQ(reduced_shape({}, {}, false), Shape{});
}

TEST(DType, PromotionTable) {
  const std::vector<DType> all{DType::b8, DType::u8, DType::i32, DType::i64, DType::f16, DType::bf16, DType::f32, DType::f64};
  for (DType a : all) {
    EXPECT_EQ(promote_types(a, a), a);
    for (DType b : all) EXPECT_EQ(promote_types(a, b), promote_types(b, a)) << dtype_name(a) << " " << dtype_name(b);
  }
  EXPECT_EQ(promote_types(DType::i32, DType::f32), DType::f32);
  EXPECT_EQ(promote_types(DType::i64, DType::f16), DType::f16);
  EXPECT_EQ(promote_types(DType::i64, DType::i32), DType::i64);
  EXPECT_EQ(promote_types(DType::b8, DType::i32), DType::i32);
  EXPECT_EQ(promote_types(DType::b8, DType::u8), DType::u8);
  EXPECT_EQ(promote_types(DType::u8, DType::i32), DType::i32);
  EXPECT_EQ(promote_types(DType::bf16, DType::f16), DType::f32);
  EXPECT_EQ(promote_types(DType::bf16, DType::f32), DType::f32);
  EXPECT_EQ(promote_types(DType::f32, DType::f64), DType::f64);
  EXPECT_EQ(promote_types(DType::b8, DType::bf16), DType::bf16);
}

TEST(DType, NamesSizesAndKinds) {
  const std::vector<std::pair<DType, size_t>> all{{DType::f32, 4}, {DType::f64, 8}, {DType::bf16, 2}, {DType::f16, 2},
                                                  {DType::i32, 4}, {DType::i64, 8}, {DType::u8, 1},   {DType::b8, 1}};
  for (const auto& [dt, size] : all) {
    EXPECT_EQ(dtype_size(dt), size);
    EXPECT_EQ(dtype_from_name(dtype_name(dt)), dt);
  }
  EXPECT_EQ(dtype_from_name("bf16"), DType::bf16);
  EXPECT_EQ(dtype_from_name("half"), DType::f16);
  EXPECT_EQ(dtype_from_name("double"), DType::f64);
  EXPECT_ERROR(dtype_from_name("float8"), "[dtype] unknown dtype name 'float8'");
  EXPECT_TRUE(is_floating(DType::bf16));
  EXPECT_FALSE(is_floating(DType::i64));
  EXPECT_TRUE(is_integral(DType::b8));
  EXPECT_ERROR(visit_floating(DType::i32, "myop", []<typename T>() { return 0; }),
               "[myop] expects a floating-point tensor, got int32");
}

TEST(DType, Float16Conversions) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float(float16(1.0f)), 1.0f);
  EXPECT_EQ(float16(1.0f).bits, 0x3c00);
  EXPECT_EQ(float16(-2.0f).bits, 0xc000);
  EXPECT_EQ(float(float16(65504.0f)), 65504.0f);        // largest finite
  EXPECT_EQ(float(float16(65519.0f)), 65504.0f);        // rounds down below the halfway point
  EXPECT_EQ(float(float16(65520.0f)), inf);             // halfway to 65536 rounds to even: inf
  EXPECT_EQ(float(float16(-1e6f)), -inf);
  EXPECT_EQ(float(float16(inf)), inf);
  EXPECT_TRUE(std::isnan(float(float16(std::nanf("")))));
  EXPECT_EQ(float(float16(6.103515625e-05f)), 6.103515625e-05f);  // smallest normal, 2^-14
  EXPECT_EQ(float(float16(5.9604645e-08f)), 5.9604645e-08f);      // smallest subnormal, 2^-24
  EXPECT_EQ(float16(2.9802322e-08f).bits, 0);                     // 2^-25: tie rounds to even (0)
  EXPECT_EQ(float16(4.4703484e-08f).bits, 1);                     // 1.5 * 2^-25 rounds up
  EXPECT_EQ(float16(6.1e-05f).bits, 0x3ff);                       // largest subnormal region
  EXPECT_EQ(float16(-0.0f).bits, 0x8000);
  EXPECT_EQ(float(float16(1.0009765625f)), 1.0009765625f);        // 1 + 2^-10 exact
  EXPECT_EQ(float(float16(1.00048828125f)), 1.0f);                // 1 + 2^-11: tie to even
  EXPECT_EQ(float(float16(1.00146484375f)), 1.001953125f);        // 1 + 3*2^-11: tie to even (up)
  // Every float16 value round-trips through float exactly.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float16 h = float16::from_bits(uint16_t(b));
    float f = float(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(float16(f).bits, uint16_t(b)) << b;
  }
}

TEST(DType, BFloat16Conversions) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(bfloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(float(bfloat16::from_bits(0x7f7f)), 3.3895314e38f);  // largest finite
  EXPECT_EQ(float(bfloat16(3.4e38f)), inf);  // rounds past the largest finite value
  EXPECT_EQ(float(bfloat16(-inf)), -inf);
  EXPECT_TRUE(std::isnan(float(bfloat16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(float(bfloat16::from_bits(0x7f81))));
  EXPECT_EQ(bfloat16(1.00390625f).bits, bfloat16(1.0f).bits);   // tie to even (down)
  EXPECT_EQ(bfloat16(1.01171875f).bits, 0x3f82);                // tie to even (up)
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = float(bfloat16::from_bits(uint16_t(b)));
    if (std::isnan(f)) continue;
    ASSERT_EQ(bfloat16(f).bits, uint16_t(b)) << b;
  }
}
