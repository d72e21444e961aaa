// ember's packed float32 GEMM against a plain triple loop in double: every
// transpose case, edge tiles in rows and columns (below the 6 x 16 tile and
// across the packed blocks' edges), k cut into several slices, leading
// dimensions wider than the matrices, alpha and beta, beta = 0 over NaN (C must
// not be read), a bias added to every row, k = 0, and 1 or 2 threads giving
// the same bits; gemm_bias (with beta 0 and 1) gives the same result through
// either library; a B packed once (pack_b_whole + sgemm_prepacked) gives the
// bits sgemm_packed gives.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <vector>

#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/sgemm_packed.h"
#include "backend/filled_values.h"

namespace ember::cpu {
namespace {

using ember::cpu::testing::filled;

struct Case {
  bool ta, tb;
  int64_t m, n, k;
  float alpha, beta;
  bool bias = false;
};

// Runs one case with `threads` and checks every element of C (and that the
// padding columns beyond n are untouched); returns C for bit comparisons.
std::vector<float> check(const Case& cs, int threads) {
  const int64_t lda = (cs.ta ? cs.m : cs.k) + 3, ldb = (cs.tb ? cs.k : cs.n) + 5, ldc = cs.n + 2;
  const std::vector<float> a = filled(size_t((cs.ta ? cs.k : cs.m) * lda + 1), 1),
                           b = filled(size_t((cs.tb ? cs.n : cs.k) * ldb + 1), 2);
  std::vector<float> c = filled(size_t(cs.m * ldc), 3);
  if (cs.beta == 0.0f)
    for (int64_t i = 0; i < cs.m; ++i)
      for (int64_t j = 0; j < cs.n; ++j) c[size_t(i * ldc + j)] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> c0 = c, bias = filled(size_t(cs.n), 4);
  sgemm_packed(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta, c.data(), ldc,
               threads, cs.bias ? bias.data() : nullptr);
  for (int64_t i = 0; i < cs.m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = size_t(i * ldc + j);
      if (j >= cs.n) {
        EXPECT_EQ(c[at], c0[at]) << "padding written at " << i << "," << j;
        continue;
      }
      double want = 0;
      for (int64_t p = 0; p < cs.k; ++p)
        want += double(cs.ta ? a[size_t(p * lda + i)] : a[size_t(i * lda + p)]) *
                double(cs.tb ? b[size_t(j * ldb + p)] : b[size_t(p * ldb + j)]);
      want *= cs.alpha;
      if (cs.bias) want += bias[size_t(j)];
      if (cs.beta != 0.0f) want += double(cs.beta) * c0[at];
      if (std::fabs(double(c[at]) - want) > 1e-5 * (1 + double(cs.k))) {  // first difference only
        ADD_FAILURE() << "m=" << cs.m << " n=" << cs.n << " k=" << cs.k << " ta=" << cs.ta << " tb=" << cs.tb << " at "
                      << i << "," << j << ": got " << c[at] << ", want " << want;
        return c;
      }
    }
  return c;
}

TEST(SgemmPacked, MatchesLoopsForEdgesAndTransposes) {
  if (!sgemm_packed_available()) GTEST_SKIP() << "built without AVX2 + FMA";
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t m : {1, 5, 6, 7, 23})
        for (int64_t n : {1, 8, 15, 16, 17, 40})
          for (int64_t k : {1, 7, 8, 33}) check({ta, tb, m, n, k, 1.0f, 0.0f}, 1);
}

TEST(SgemmPacked, SeveralBlocksAndSlicesWithAlphaBeta) {
  if (!sgemm_packed_available()) GTEST_SKIP() << "built without AVX2 + FMA";
  // k = 800 is three slices; m = 300 spans two row blocks at k's slice depth;
  // n = 3100 spans two column blocks.
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check({ta, tb, 300, 70, 800, 0.5f, 0.0f}, 2);
      check({ta, tb, 31, 3100, 20, 1.0f, 1.0f}, 2);
      check({ta, tb, 97, 53, 389, -2.0f, 0.25f}, 1);
    }
}

TEST(SgemmPacked, BiasOnEveryRow) {
  if (!sgemm_packed_available()) GTEST_SKIP() << "built without AVX2 + FMA";
  for (bool tb : {false, true}) {
    check({false, tb, 70, 37, 50, 1.0f, 0.0f, true}, 2);
    check({false, tb, 13, 16, 800, 1.0f, 0.5f, true}, 1);  // bias once, not once per k slice
    check({false, tb, 5, 9, 0, 1.0f, 0.0f, true}, 1);
  }
}

TEST(SgemmPacked, GemmBiasAgreesAcrossLibraries) {
  if (!sgemm_packed_available()) GTEST_SKIP() << "built without AVX2 + FMA";
  const int64_t m = 96, n = 80, k = 64;
  const std::vector<float> a = filled(size_t(m * k), 5), w = filled(size_t(n * k), 6), bias = filled(size_t(n), 7);
  const std::vector<float> residual = filled(size_t(m * n), 8);
  const SgemmImpl before = sgemm_impl();
  for (float beta : {0.0f, 1.0f}) {  // beta 1: onto a residual stream
    std::vector<float> ours = residual, theirs = residual;
    set_sgemm_impl(SgemmImpl::ember);
    gemm_bias(false, true, m, n, k, a.data(), k, w.data(), k, bias.data(), ours.data(), n, beta);
    set_sgemm_impl(SgemmImpl::onednn);
    gemm_bias(false, true, m, n, k, a.data(), k, w.data(), k, bias.data(), theirs.data(), n, beta);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double want = bias[size_t(j)] + beta * residual[size_t(i * n + j)];
        for (int64_t p = 0; p < k; ++p) want += double(a[size_t(i * k + p)]) * w[size_t(j * k + p)];
        const size_t at = size_t(i * n + j);
        ASSERT_NEAR(ours[at], want, 1e-4) << "beta " << beta << " at " << at;
        ASSERT_NEAR(theirs[at], want, 1e-4) << "beta " << beta << " at " << at;
      }
  }
  set_sgemm_impl(before);
}

TEST(SgemmPacked, ThreadsGiveTheSameBits) {
  if (!sgemm_packed_available()) GTEST_SKIP() << "built without AVX2 + FMA";
  for (const Case& cs : {Case{false, true, 130, 90, 70, 1.0f, 0.0f}, Case{true, false, 40, 300, 90, 1.0f, 1.0f}})
    EXPECT_EQ(check(cs, 1), check(cs, 2));
}

TEST(SgemmPacked, PrepackedBGivesTheSameBits) {
  if (!sgemm_packed_available()) GTEST_SKIP() << "built without AVX2 + FMA";
  // Several k slices (800), two column blocks (3100), edge slivers (n % 16),
  // a column split between threads (n > m), one row (a decode step).
  const Case cases[] = {{false, true, 256, 1536, 384, 1.0f, 0.0f, true}, {false, true, 300, 70, 800, 0.5f, 0.0f},
                        {true, false, 31, 3100, 20, 1.0f, 1.0f},        {false, false, 97, 53, 389, -2.0f, 0.25f, true},
                        {true, true, 1, 1000, 37, 1.0f, 0.0f},          {false, true, 5, 9, 0, 1.0f, 0.5f, true}};
  for (const Case& cs : cases)
    for (int threads : {1, 2}) {
      const int64_t lda = (cs.ta ? cs.m : cs.k) + 3, ldb = (cs.tb ? cs.k : cs.n) + 5, ldc = cs.n + 2;
      const std::vector<float> a = filled(size_t((cs.ta ? cs.k : cs.m) * lda + 1), 1),
                               b = filled(size_t((cs.tb ? cs.n : cs.k) * ldb + 1), 2),
                               bias = filled(size_t(cs.n), 4);
      const std::vector<float> c0 = filled(size_t(cs.m * ldc), 3);
      std::vector<float> want = c0, got = c0;
      sgemm_packed(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta, want.data(), ldc,
                   threads, cs.bias ? bias.data() : nullptr);
      const int64_t floats = packed_b_floats(cs.k, cs.n);
      std::unique_ptr<float, decltype(&std::free)> packed(
          static_cast<float*>(std::aligned_alloc(64, size_t(std::max<int64_t>(floats, 16)) * sizeof(float))),
          &std::free);
      pack_b_whole(cs.tb, cs.k, cs.n, b.data(), ldb, packed.get());
      sgemm_prepacked(cs.ta, cs.m, cs.n, cs.k, cs.alpha, a.data(), lda, packed.get(), cs.beta, got.data(), ldc,
                      threads, cs.bias ? bias.data() : nullptr);
      EXPECT_EQ(got, want) << "m=" << cs.m << " n=" << cs.n << " k=" << cs.k << " threads=" << threads;
    }
}

TEST(SgemmPacked, EmptyProductScalesC) {
  if (!sgemm_packed_available()) GTEST_SKIP() << "built without AVX2 + FMA";
  check({false, false, 9, 20, 0, 1.0f, 0.5f}, 1);
  check({false, false, 9, 20, 0, 1.0f, 0.0f}, 1);
}

TEST(SgemmPacked, RoutingKeepsThinProductsOnOneDnn) {
  if (!sgemm_packed_available()) GTEST_SKIP() << "built without AVX2 + FMA";
  const SgemmImpl before = sgemm_impl();
  set_sgemm_impl(SgemmImpl::onednn);
  EXPECT_FALSE(sgemm_uses_packed(2048, 2048, 2048));
  set_sgemm_impl(SgemmImpl::ember);
  EXPECT_TRUE(sgemm_uses_packed(1, 1152, 384));
  set_sgemm_impl(SgemmImpl::automatic);
  EXPECT_FALSE(sgemm_uses_packed(8, 1152, 384));  // decode: oneDNN
  set_sgemm_impl(before);
}

}  // namespace
}  // namespace ember::cpu
