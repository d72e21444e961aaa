// Weight-only quantization (infer/quant.h, infer/quant_kernels.h): the
// round-trip error of each scheme stays within its bound (half a scale step;
// f16: exact for values float16 holds, half an ulp otherwise, and the
// conversions equal the F16C instructions bit for bit),
// and the GEMV (decode) and GEMM (prefill) kernels of every format equal a
// float64 product with the dequantized weights, for sizes that are not
// multiples of the vector width or the int4 group, with and without bias and
// accumulation, on one and on several threads' worth of rows.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/packed_weights.h"
#include "ember/infer/quant.h"
#include "ember/infer/quant_kernels.h"
#include "test_util.h"

namespace ember::infer {
namespace {

// Rows of different magnitudes, an all-zero row and an all-zero stretch, so
// that scales differ and the zero cases are covered.
std::vector<float> matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> w(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[size_t(r * cols + c)] = n(rng) * 0.02f * float(1 + r % 5);
  if (rows > 2)
    for (int64_t c = 0; c < cols; ++c) w[size_t(1 * cols + c)] = 0.0f;
  if (rows > 3)
    for (int64_t c = 0; c < std::min<int64_t>(cols, 40); ++c) w[size_t(3 * cols + c)] = 0.0f;
  return w;
}

std::vector<float> activations(int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(size_t(n * k));
  for (float& v : x) v = u(rng);
  return x;
}

TEST(QuantRoundTrip, Int8ErrorWithinHalfAStepPerRow) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{7, 1}, {13, 33}, {64, 300}}) {
    const std::vector<float> w = matrix(rows, cols, 1);
    const QuantizedMatrix q = quantize_matrix(w.data(), rows, cols, WeightFormat::int8, 0);
    ASSERT_EQ(q.data.size(), size_t(rows * cols));
    ASSERT_EQ(q.scales.size(), size_t(rows));
    const std::vector<float> d = dequantize(q.view());
    for (int64_t r = 0; r < rows; ++r) {
      float amax = 0;
      for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(w[size_t(r * cols + c)]));
      EXPECT_FLOAT_EQ(q.scales[size_t(r)], amax / 127.0f);
      bool hit_extreme = amax == 0;
      for (int64_t c = 0; c < cols; ++c) {
        const size_t i = size_t(r * cols + c);
        EXPECT_LE(std::fabs(d[i] - w[i]), q.scales[size_t(r)] * 0.5f * (1 + 1e-5f) + 1e-12f) << r << "," << c;
        hit_extreme = hit_extreme || std::abs(int(int8_t(q.data[i]))) == 127;
      }
      EXPECT_TRUE(hit_extreme) << "row " << r << ": the largest weight must map to +-127";
    }
    if (rows > 2) {
      for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(d[size_t(cols + c)], 0.0f);  // the zero row stays zero
    }
  }
}

TEST(QuantRoundTrip, Int4ErrorWithinHalfAStepPerGroup) {
  for (int64_t group : {32, 64, 128})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{5, 1}, {9, 77}, {16, 256}, {6, 301}}) {
      const std::vector<float> w = matrix(rows, cols, 2);
      const QuantizedMatrix q = quantize_matrix(w.data(), rows, cols, WeightFormat::int4, group);
      const int64_t ng = int4_groups(cols, group);
      ASSERT_EQ(q.data.size(), size_t(rows * int4_row_bytes(cols)));
      ASSERT_EQ(q.scales.size(), size_t(rows * ng));
      const std::vector<float> d = dequantize(q.view());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const size_t i = size_t(r * cols + c);
          const float s = q.scales[size_t(r * ng + c / group)];
          EXPECT_LE(std::fabs(d[i] - w[i]), s * 0.5f * (1 + 1e-5f) + 1e-12f)
              << "group " << group << " [" << rows << ", " << cols << "] at " << r << "," << c;
        }
      if (cols % 2 == 1) {  // the unused high nibble of a row's last byte holds value 0
        for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(q.data[size_t((r + 1) * int4_row_bytes(cols) - 1)] >> 4, 8);
      }
    }
}

// Every binary16 value survives half -> float -> half, including zeros of
// both signs, subnormals, the largest finite value and infinities; a float
// matrix of values float16 holds round-trips exactly through quantize_matrix.
TEST(QuantRoundTrip, F16ExactForRepresentableValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_EQ(h & 0x7C00u, 0x7C00u);
      EXPECT_NE(h & 0x3FFu, 0u);
      continue;
    }
    ASSERT_EQ(float_to_half(f), h) << std::hex << h << " -> " << f;
  }
  EXPECT_EQ(half_to_float(0x7BFF), kHalfMax);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // the smallest subnormal
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));  // the smallest normal
  EXPECT_EQ(std::bit_cast<uint32_t>(half_to_float(0x8000)), 0x80000000u);  // -0 keeps its sign

  std::vector<float> w = {0.0f, -0.0f, 1.0f, -2.5f, kHalfMax, -kHalfMax, std::ldexp(1.0f, -24), 0.333251953125f,
                          1025.0f, std::ldexp(3.0f, -20), 0.015625f, -7.0f};
  const QuantizedMatrix q = quantize_matrix(w.data(), 3, 4, WeightFormat::f16, 0);
  EXPECT_EQ(q.data.size(), w.size() * 2);
  EXPECT_TRUE(q.scales.empty());
  EXPECT_EQ(q.view().bytes(), int64_t(w.size() * 2));
  const std::vector<float> d = dequantize(q.view());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(std::bit_cast<uint32_t>(d[i]), std::bit_cast<uint32_t>(w[i])) << i;
}

// Values float16 cannot hold round to the nearest (ties to even): the error is
// at most half an ulp, 2^-11 relative for normals and 2^-25 absolute below 2^-14.
TEST(QuantRoundTrip, F16RoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // the tie after 1.0 goes to 1.0 (even)
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // the next tie goes up to even
  EXPECT_EQ(float_to_half(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3C01);
  EXPECT_EQ(float_to_half(65519.0f), 0x7BFF);  // below the tie with 2^16: the largest finite
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00);  // the tie rounds to even, 2^16: infinity
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal: to even, 0
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -26)), 0x0400);  // rounds up into the normals
  const std::vector<float> w = matrix(16, 100, 4);
  const QuantizedMatrix q = quantize_matrix(w.data(), 16, 100, WeightFormat::f16, 0);
  const std::vector<float> d = dequantize(q.view());
  for (size_t i = 0; i < w.size(); ++i) {
    const float a = std::fabs(w[i]);
    const float bound = a >= std::ldexp(1.0f, -14) ? a * std::ldexp(1.0f, -11) : std::ldexp(1.0f, -25);
    EXPECT_LE(std::fabs(d[i] - w[i]), bound) << i << ": " << w[i];
  }
#if defined(__F16C__)
  // The hardware conversions (what the kernels use) agree bit for bit.
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(uint16_t(h)), hw = _cvtsh_ss(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(hw)) << std::hex << h;
  }
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 1000000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT))) << f;
  }
#endif
}

TEST(QuantRoundTrip, RefusesBadInput) {
  std::vector<float> w = matrix(4, 8, 3);
  EXPECT_ERROR(quantize_matrix(w.data(), 4, 8, WeightFormat::int4, 48), "[quantize] int4 group size must be 32, 64 or 128");
  EXPECT_ERROR(quantize_matrix(w.data(), 4, 8, WeightFormat::f32, 0), "[quantize] weight: float32 is not");
  w[5] = std::nanf("");
  EXPECT_ERROR(quantize_matrix(w.data(), 4, 8, WeightFormat::int8, 0, "h.0.mlp"), "[quantize] h.0.mlp: weight [0, 5] is nan");
  EXPECT_ERROR(weight_format_from_name("int3", "quantize"), "[quantize] unknown weight format 'int3' (known: int8, int4, f16)");
  EXPECT_EQ(weight_format_from_name("f16", "quantize"), WeightFormat::f16);
  w[5] = 7e4f;  // finite, but beyond float16
  EXPECT_ERROR(quantize_matrix(w.data(), 4, 8, WeightFormat::f16, 0, "lm_head"),
               "[quantize] lm_head: weight [0, 5] is 70000, beyond float16's range (65504)");
}

struct KernelCase {
  WeightFormat format;
  int64_t group;
};

// Every product of the kernels against sum_i x[r, i] * dequant(W)[o, i] in
// float64. The bound is relative to sum_i |x| |w|, the scale of the rounding
// error of any summation order in float32.
void check_kernel(const KernelCase& kc, int64_t rows, int64_t cols, int64_t n, bool with_bias, bool accumulate) {
  SCOPED_TRACE(testing::Message() << weight_format_name(kc.format) << " g" << kc.group << " W[" << rows << ", " << cols
                                  << "] n=" << n << (with_bias ? " bias" : "") << (accumulate ? " accumulate" : ""));
  const std::vector<float> wf = matrix(rows, cols, uint32_t(rows * 31 + cols));
  QuantizedMatrix q;
  LinearWeight lw{WeightFormat::f32, rows, cols, 0, wf.data(), nullptr};
  if (kc.format != WeightFormat::f32) {
    q = quantize_matrix(wf.data(), rows, cols, kc.format, kc.group);
    lw = q.view();
  }
  const std::vector<float> wd = dequantize(lw);
  std::vector<float> fast(size_t(rows * cols));
  dequantize_rows_fast(lw, 0, rows, fast.data());
  ASSERT_EQ(fast, wd);
  const std::vector<float> x = activations(n, cols, uint32_t(n + 7));
  const std::vector<float> bias = activations(1, rows, 99);
  const std::vector<float> y0 = activations(n, rows, 5);  // what accumulate adds to
  std::vector<float> y = y0, scratch;
  linear_rows(lw, x.data(), n, with_bias ? bias.data() : nullptr, y.data(), accumulate, scratch);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < rows; ++o) {
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < cols; ++i) {
        const double p = double(x[size_t(r * cols + i)]) * double(wd[size_t(o * cols + i)]);
        ref += p, mag += std::fabs(p);
      }
      if (with_bias) ref += bias[size_t(o)], mag += std::fabs(bias[size_t(o)]);
      if (accumulate) ref += y0[size_t(r * rows + o)], mag += std::fabs(y0[size_t(r * rows + o)]);
      const double err = std::fabs(double(y[size_t(r * rows + o)]) - ref);
      ASSERT_LE(err, 1e-4 * mag + 1e-7) << "row " << r << " output " << o << ": " << y[size_t(r * rows + o)] << " vs " << ref;
    }
}

TEST(QuantKernels, GemvAndGemmEqualTheDequantizedProduct) {
  const KernelCase cases[] = {{WeightFormat::f32, 0},  {WeightFormat::int8, 0},   {WeightFormat::int4, 32},
                              {WeightFormat::int4, 64}, {WeightFormat::int4, 128}, {WeightFormat::f16, 0}};
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 7}, {5, 16}, {13, 33}, {37, 100}, {64, 256}, {70, 129}, {9, 300}};
  for (const KernelCase& kc : cases)
    for (auto [rows, cols] : shapes)
      for (int64_t n : {1, 2, 3, 8, 9, 21}) check_kernel(kc, rows, cols, n, /*bias=*/n % 2 == 1, /*accumulate=*/n % 3 == 0);
}

TEST(QuantKernels, ParallelAndBlockedPaths) {
  // m * k above the GEMV's threading threshold, and a GEMM whose weight is
  // dequantized in more than one tile (tile rows = 2^19 / k rounded to 16).
  for (const KernelCase& kc :
       {KernelCase{WeightFormat::int8, 0}, KernelCase{WeightFormat::int4, 64}, KernelCase{WeightFormat::f16, 0}})
    for (int64_t n : {1, 4, 17}) {
      check_kernel(kc, 300, 260, n, true, false);
      check_kernel(kc, 1100, 1000, n, false, true);
    }
}

TEST(QuantKernels, PackedFloatWeightsTakeTheActivationInTheProduct) {
  // The runner's prefill MLP: with a packed float weight and more rows than
  // the decode kernels take, GELU is applied as the product writes Y, equal
  // (to float32 rounding) to the product followed by the activation kernel;
  // otherwise nothing is written and false says so.
  const cpu::WeightLayout layout = cpu::frozen_weight_layout();
  if (layout == cpu::WeightLayout::none) GTEST_SKIP() << "no layout to pack weights in";
  const int64_t rows = 70, cols = 129, n = 21;
  const std::vector<float> wf = matrix(rows, cols, 3), x = activations(n, cols, 4), bias = activations(1, rows, 5);
  std::vector<float> packed(size_t(cpu::packed_weight_floats(layout, cols, rows)) + 16);
  float* aligned = packed.data() + (64 - reinterpret_cast<uintptr_t>(packed.data()) % 64) % 64 / sizeof(float);
  cpu::pack_weight(layout, true, cols, rows, wf.data(), cols, aligned);
  LinearWeight plain{WeightFormat::f32, rows, cols, 0, wf.data(), nullptr};
  LinearWeight lw = plain;
  lw.packed = aligned;
  lw.packed_layout = layout;
  std::vector<float> got(size_t(n * rows), -1.0f), want(size_t(n * rows)), scratch;
  ASSERT_TRUE(linear_rows_activated(lw, x.data(), n, bias.data(), UnaryOp::gelu_tanh, got.data()));
  linear_rows(plain, x.data(), n, bias.data(), want.data(), false, scratch);
  cpu::unary_block_f32(UnaryOp::gelu_tanh, want.data(), want.data(), int64_t(want.size()));
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << i;
  std::vector<float> untouched(size_t(n * rows), -1.0f);
  EXPECT_FALSE(linear_rows_activated(plain, x.data(), n, bias.data(), UnaryOp::gelu_tanh, untouched.data()));
  EXPECT_FALSE(linear_rows_activated(lw, x.data(), kGemvMaxRows, bias.data(), UnaryOp::gelu_tanh, untouched.data()));
  EXPECT_EQ(untouched, std::vector<float>(size_t(n * rows), -1.0f));
}

}  // namespace
}  // namespace ember::infer
