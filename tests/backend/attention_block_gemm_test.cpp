// The attention kernels' register-tiled block product against a plain triple
// loop in double: every tile shape (row tails below the AVX2 path's 6-row and
// the AVX-512 path's 8-row tile, column tails below 8, 16 and 32), both
// operand layouts of A, k = 0, and accumulate on and off.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ember/backend/cpu/attention_block_gemm.h"
#include "backend/filled_values.h"

namespace ember::cpu {
namespace {

using ember::cpu::testing::filled;

TEST(AttentionBlockGemm, MatchesLoopsForEveryTileShape) {
  for (int64_t m : {1, 2, 5, 6, 7, 8, 9, 13, 16, 64, 70})
    for (int64_t n : {1, 3, 8, 9, 15, 16, 17, 31, 32, 33, 40, 48, 64})
      for (int64_t k : {0, 1, 5, 64})
        for (bool trans_a : {false, true})
          for (bool accumulate : {false, true}) {
            // Leading dimensions wider than the matrices, so that strides are exercised.
            const int64_t lda = (trans_a ? m : k) + 3, ldb = n + 5, ldc = n + 2;
            const std::vector<float> a = filled(size_t((trans_a ? k : m) * lda + 1), 1),
                                     b = filled(size_t(std::max<int64_t>(k, 1) * ldb), 2);
            std::vector<float> c = filled(size_t(m * ldc), 3);
            const std::vector<float> c0 = c;
            const int64_t a_rs = trans_a ? 1 : lda, a_ps = trans_a ? lda : 1;
            block_gemm(m, n, k, a.data(), a_rs, a_ps, b.data(), ldb, c.data(), ldc, accumulate);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < ldc; ++j) {
                const float got = c[size_t(i * ldc + j)];
                if (j >= n) {  // outside the product: untouched
                  ASSERT_EQ(got, c0[size_t(i * ldc + j)]) << "m=" << m << " n=" << n << " k=" << k;
                  continue;
                }
                double want = accumulate ? c0[size_t(i * ldc + j)] : 0.0;
                for (int64_t p = 0; p < k; ++p) want += double(a[size_t(i * a_rs + p * a_ps)]) * b[size_t(p * ldb + j)];
                ASSERT_NEAR(got, want, 1e-4 * (1 + std::fabs(want)))
                    << "m=" << m << " n=" << n << " k=" << k << " trans_a=" << trans_a << " acc=" << accumulate
                    << " at " << i << "," << j;
              }
          }
}

TEST(AttentionBlockGemm, DoubleMatchesLoops) {
  const int64_t m = 7, n = 11, k = 9;
  std::vector<double> a(size_t(m * k)), b(size_t(k * n)), c(size_t(m * n), 1.0);
  for (size_t i = 0; i < a.size(); ++i) a[i] = double(i % 7) - 3.0;
  for (size_t i = 0; i < b.size(); ++i) b[i] = double(i % 5) * 0.5;
  block_gemm(m, n, k, a.data(), k, 1, b.data(), n, c.data(), n, true);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double want = 1.0;
      for (int64_t p = 0; p < k; ++p) want += a[size_t(i * k + p)] * b[size_t(p * n + j)];
      EXPECT_DOUBLE_EQ(c[size_t(i * n + j)], want);
    }
}

}  // namespace
}  // namespace ember::cpu
