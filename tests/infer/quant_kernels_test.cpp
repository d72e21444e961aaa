// Weight-only quantization (infer/quant.h, infer/quant_kernels.h): the
// round-trip error of each scheme stays within its bound (half a scale step),
// and the GEMV (decode) and GEMM (prefill) kernels of every format equal a
// float64 product with the dequantized weights, for sizes that are not
// multiples of the vector width or the int4 group, with and without bias and
// accumulation, on one and on several threads' worth of rows.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

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

TEST(QuantRoundTrip, RefusesBadInput) {
  std::vector<float> w = matrix(4, 8, 3);
  EXPECT_ERROR(quantize_matrix(w.data(), 4, 8, WeightFormat::int4, 48), "[quantize] int4 group size must be 32, 64 or 128");
  EXPECT_ERROR(quantize_matrix(w.data(), 4, 8, WeightFormat::f32, 0), "[quantize] weight: float32 is not");
  w[5] = std::nanf("");
  EXPECT_ERROR(quantize_matrix(w.data(), 4, 8, WeightFormat::int8, 0, "h.0.mlp"), "[quantize] h.0.mlp: weight [0, 5] is nan");
  EXPECT_ERROR(weight_format_from_name("int3", "quantize"), "[quantize] unknown weight format 'int3' (known: int8, int4)");
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
  const KernelCase cases[] = {{WeightFormat::f32, 0}, {WeightFormat::int8, 0}, {WeightFormat::int4, 32},
                              {WeightFormat::int4, 64}, {WeightFormat::int4, 128}};
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 7}, {5, 16}, {13, 33}, {37, 100}, {64, 256}, {70, 129}, {9, 300}};
  for (const KernelCase& kc : cases)
    for (auto [rows, cols] : shapes)
      for (int64_t n : {1, 2, 3, 8, 9, 21}) check_kernel(kc, rows, cols, n, /*bias=*/n % 2 == 1, /*accumulate=*/n % 3 == 0);
}

TEST(QuantKernels, ParallelAndBlockedPaths) {
  // m * k above the GEMV's threading threshold, and a GEMM whose weight is
  // dequantized in more than one tile (tile rows = 2^19 / k rounded to 16).
  for (const KernelCase& kc : {KernelCase{WeightFormat::int8, 0}, KernelCase{WeightFormat::int4, 64}})
    for (int64_t n : {1, 4, 17}) {
      check_kernel(kc, 300, 260, n, true, false);
      check_kernel(kc, 1100, 1000, n, false, true);
    }
}

}  // namespace
}  // namespace ember::infer
