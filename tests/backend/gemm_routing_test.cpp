// cpu::gemm and cpu::gemm_bias through oneDNN's matmul primitive against a
// plain triple loop in double: every transpose case, leading dimensions wider
// than the matrices (the padding of C untouched), alpha and beta (beta 0 over
// NaN: C must not be read), a bias on every row, and a repeated call (a cached
// primitive) giving the same bits; which products the automatic choice sends
// to the primitive (on AVX-512 builds), that none inside a parallel region
// does, and that a cached primitive gives the same bits on other threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "ember/backend/cpu/gemm.h"
#include "backend/filled_values.h"
#include "backend/impl_scope.h"

namespace ember::cpu {
namespace {

using ember::cpu::testing::filled;
using ember::cpu::testing::ImplScope;

struct Case {
  bool ta, tb;
  int64_t m, n, k;
  float alpha, beta;
  bool bias = false;
};

// Runs one case and checks every element of C and its padding; returns C.
std::vector<float> check(const Case& cs) {
  const int64_t lda = (cs.ta ? cs.m : cs.k) + 3, ldb = (cs.tb ? cs.k : cs.n) + 5, ldc = cs.n + 2;
  const std::vector<float> a = filled(size_t((cs.ta ? cs.k : cs.m) * lda), 1),
                           b = filled(size_t((cs.tb ? cs.n : cs.k) * ldb), 2), bias = filled(size_t(cs.n), 4);
  std::vector<float> c = filled(size_t(cs.m * ldc), 3);
  if (cs.beta == 0.0f)  // C must not be read: NaN in it would show
    for (int64_t i = 0; i < cs.m; ++i)
      for (int64_t j = 0; j < cs.n; ++j) c[size_t(i * ldc + j)] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> c0 = c;
  if (cs.bias) {
    EXPECT_EQ(cs.alpha, 1.0f) << "gemm_bias has no alpha";
    gemm_bias(cs.ta, cs.tb, cs.m, cs.n, cs.k, a.data(), lda, b.data(), ldb, bias.data(), c.data(), ldc, cs.beta);
  } else {
    gemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta, c.data(), ldc);
  }
  for (int64_t i = 0; i < cs.m; ++i) {
    for (int64_t j = 0; j < cs.n; ++j) {
      double dot = 0;
      for (int64_t p = 0; p < cs.k; ++p) {
        const double av = a[size_t(cs.ta ? p * lda + i : i * lda + p)];
        const double bv = b[size_t(cs.tb ? j * ldb + p : p * ldb + j)];
        dot += av * bv;
      }
      double want = cs.alpha * dot + (cs.bias ? bias[size_t(j)] : 0.0);
      if (cs.beta != 0.0f) want += double(cs.beta) * c0[size_t(i * ldc + j)];
      const size_t at = size_t(i * ldc + j);
      EXPECT_NEAR(c[at], want, 1e-4 * (1.0 + std::sqrt(double(cs.k))))
          << "ta=" << cs.ta << " tb=" << cs.tb << " m=" << cs.m << " n=" << cs.n << " k=" << cs.k << " at (" << i
          << ", " << j << ")";
      if (::testing::Test::HasFailure()) return c;
    }
    for (int64_t j = cs.n; j < ldc; ++j) EXPECT_EQ(c[size_t(i * ldc + j)], c0[size_t(i * ldc + j)]) << "padding";
  }
  return c;
}

TEST(GemmRouting, MatmulPrimitiveMatchesTheLoopForEveryLayout) {
  ImplScope scope(SgemmImpl::onednn_matmul);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check({ta, tb, 70, 37, 50, 1.0f, 0.0f});
      check({ta, tb, 65, 19, 300, 0.5f, 1.0f});     // alpha, accumulate into C
      check({ta, tb, 96, 80, 64, -2.0f, 0.25f});    // both scaled
      check({ta, tb, 3, 33, 17, 1.0f, 0.0f});       // a few rows
      check({ta, tb, 80, 48, 40, 1.0f, 0.0f, true});  // a linear layer
      check({ta, tb, 80, 48, 40, 1.0f, 1.0f, true});  // onto a residual stream
    }
}

TEST(GemmRouting, ACachedPrimitiveGivesTheSameBits) {
  ImplScope scope(SgemmImpl::onednn_matmul);
  const Case cs{false, true, 130, 90, 70, 1.0f, 0.0f, true};
  EXPECT_EQ(check(cs), check(cs));
}

TEST(GemmRouting, EmptySumLeavesTheBias) {
  // k = 0 is sgemm's (the primitive is never asked): C = bias + beta C.
  ImplScope scope(SgemmImpl::onednn_matmul);
  check({false, true, 70, 20, 0, 1.0f, 0.0f, true});
  check({false, false, 70, 20, 0, 1.0f, 0.5f});
}

TEST(GemmRouting, AutomaticChoiceSendsOnlySgemmsSlowLayoutsToThePrimitive) {
  ImplScope scope(SgemmImpl::automatic);
#if defined(__AVX512F__)
  EXPECT_TRUE(sgemm_uses_matmul_primitive(false, true, 2048, 384, 1536));      // narrowing linear layer
  EXPECT_FALSE(sgemm_uses_matmul_primitive(false, true, 2048, 1536, 384));     // widening one: sgemm
  EXPECT_TRUE(sgemm_uses_matmul_primitive(false, true, 2048, 1536, 384, true));  // unless it has a bias
  EXPECT_TRUE(sgemm_uses_matmul_primitive(true, false, 16384, 384, 2048));     // tied embedding's gradient
  EXPECT_FALSE(sgemm_uses_matmul_primitive(true, false, 1536, 384, 2048));     // other weight gradients
  EXPECT_FALSE(sgemm_uses_matmul_primitive(false, false, 2048, 384, 1536));    // input gradients
  EXPECT_FALSE(sgemm_uses_matmul_primitive(false, true, 8, 384, 1536, true));  // decode
#else
  EXPECT_FALSE(sgemm_uses_matmul_primitive(false, true, 2048, 384, 1536, true));
#endif
  {
    ImplScope sgemm_only(SgemmImpl::onednn);
    EXPECT_FALSE(sgemm_uses_matmul_primitive(false, true, 2048, 384, 1536, true));
  }
  bool inside = false, team = false;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    {
      team = omp_get_num_threads() > 1;  // OpenMP may give the region one thread (then it is not parallel)
      inside = sgemm_uses_matmul_primitive(false, true, 2048, 384, 1536, true);
    }
  }
  if (team) {
    EXPECT_FALSE(inside) << "a product inside a parallel region stays on its thread's sgemm";
  }
}

TEST(GemmRouting, ACachedPrimitiveRunsOnOtherThreads) {
  // oneDNN's own scratchpad is per thread: a primitive cached by this thread
  // and run by others (serving workers) must bring its own.
  ImplScope scope(SgemmImpl::onednn_matmul);
  const Case cs{false, true, 300, 200, 700, 1.0f, 0.0f, true};  // A Bᵀ: the primitive copies B into its scratchpad
  const std::vector<float> want = check(cs);
  std::vector<std::vector<float>> got(3);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) threads.emplace_back([&, t] { got[t] = check(cs); });
  for (std::thread& th : threads) th.join();
  for (const std::vector<float>& g : got) EXPECT_EQ(g, want);
}

}  // namespace
}  // namespace ember::cpu
