// Tests for multinomial: reproducibility for a seed (and across thread
// counts), the sampled distribution with and without replacement (loose
// chi-square checks on 20000 draws), zero-probability categories, errors.
#include <omp.h>

#include <cmath>
#include <set>

#include "index_test_util.h"

using namespace ember;

namespace {

std::vector<double> counts(const std::vector<int64_t>& draws, int64_t C) {
  std::vector<double> c(size_t(C), 0.0);
  for (int64_t d : draws) c[size_t(d)] += 1;
  return c;
}

double chi_square(const std::vector<double>& observed, const std::vector<double>& p) {
  double n = 0, chi = 0;
  for (double o : observed) n += o;
  for (size_t i = 0; i < p.size(); ++i) chi += (observed[i] - n * p[i]) * (observed[i] - n * p[i]) / (n * p[i]);
  return chi;
}

// chi-square critical value for 3 degrees of freedom at p = 0.0001 is 21.1.
constexpr double kChi3 = 21.1;

}  // namespace

TEST(IndexMultinomial, ReproducibleForASeedAndThreadCount) {
  Tensor p = tensor({0.1, 0.2, 0.3, 0.4, 0.5, 0.1, 0.1, 0.3}, {2, 4});
  Generator g1(7), g2(7), g3(8);
  Tensor a = multinomial(p, 50, true, &g1);
  Tensor b = multinomial(p, 50, true, &g2);
  EXPECT_EQ(a.shape(), (Shape{2, 50}));
  EXPECT_EQ(a.dtype(), DType::i64);
  EXPECT_EQ(ivec(a), ivec(b));
  EXPECT_NE(ivec(a), ivec(multinomial(p, 50, true, &g3)));
  // The generator advances, and restoring its state replays.
  GeneratorState s = g1.state();
  Tensor c = multinomial(p, 3, false, &g1);
  EXPECT_NE(g1.state(), s);
  g1.set_state(s);
  EXPECT_EQ(ivec(multinomial(p, 3, false, &g1)), ivec(c));
  // Independent of the number of threads, for both modes.
  Tensor big = ones({64, 500});
  int saved = omp_get_max_threads();
  Generator h1(9), h2(9);
  omp_set_num_threads(1);
  std::vector<int64_t> x1 = ivec(multinomial(big, 300, true, &h1)), y1 = ivec(multinomial(big, 20, false, &h1));
  omp_set_num_threads(std::max(saved, 3));
  std::vector<int64_t> x2 = ivec(multinomial(big, 300, true, &h2)), y2 = ivec(multinomial(big, 20, false, &h2));
  omp_set_num_threads(saved);
  EXPECT_EQ(x1, x2);
  EXPECT_EQ(y1, y2);
}

TEST(IndexMultinomial, DefaultGeneratorFollowsManualSeed) {
  Tensor p = tensor({1, 1, 1}, {3});
  manual_seed(123);
  std::vector<int64_t> a = ivec(multinomial(p, 10, true));
  manual_seed(123);
  EXPECT_EQ(ivec(multinomial(p, 10, true)), a);
}

TEST(IndexMultinomial, DistributionWithReplacement) {
  std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  Generator gen(11);
  // Unnormalised input: the same distribution scaled by 5.
  Tensor draws = multinomial(tensor({0.5, 1.0, 1.5, 2.0}, {4}), 20000, true, &gen);
  EXPECT_EQ(draws.shape(), (Shape{20000}));
  EXPECT_LT(chi_square(counts(ivec(draws), 4), p), kChi3);
  // One draw per row without replacement has the same distribution (bf16 input too).
  Tensor rows = broadcast_to(tensor({1, 2, 3, 4}, {1, 4}, DType::bf16), {20000, 4});
  Tensor one = multinomial(rows, 1, false, &gen);
  EXPECT_EQ(one.shape(), (Shape{20000, 1}));
  EXPECT_LT(chi_square(counts(ivec(one), 4), p), kChi3);
}

TEST(IndexMultinomial, DistributionWithoutReplacement) {
  std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  Generator gen(12);
  Tensor rows = broadcast_to(tensor({1, 2, 3, 4}, {1, 4}, DType::f64), {20000, 4});
  std::vector<int64_t> d = ivec(multinomial(rows, 2, false, &gen));
  std::vector<int64_t> first, second;
  for (size_t r = 0; r < 20000; ++r) {
    ASSERT_NE(d[2 * r], d[2 * r + 1]);
    first.push_back(d[2 * r]);
    second.push_back(d[2 * r + 1]);
  }
  EXPECT_LT(chi_square(counts(first, 4), p), kChi3);
  // P(second = j) = sum over i != j of p_i p_j / (1 - p_i).
  std::vector<double> q(4, 0.0);
  for (size_t j = 0; j < 4; ++j)
    for (size_t i = 0; i < 4; ++i)
      if (i != j) q[j] += p[i] * p[j] / (1 - p[i]);
  EXPECT_LT(chi_square(counts(second, 4), q), kChi3);
  // Drawing every non-zero category gives a permutation of them.
  std::vector<int64_t> all = ivec(multinomial(tensor({0, 3, 1, 0, 2}, {5}), 3, false, &gen));
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()), (std::set<int64_t>{1, 2, 4}));
}

TEST(IndexMultinomial, ZeroProbabilityNeverDrawn) {
  Generator gen(13);
  std::vector<int64_t> d = ivec(multinomial(tensor({0, 1, 0, 1e-30, 0}, {5}), 5000, true, &gen));
  for (int64_t v : d) ASSERT_TRUE(v == 1 || v == 3) << v;
  std::vector<int64_t> w = ivec(multinomial(tensor({0, 0, 5, 0}, {4}), 1, false, &gen));
  EXPECT_EQ(w, (std::vector<int64_t>{2}));
}

TEST(IndexMultinomial, Errors) {
  Tensor p = tensor({0.2, 0.8}, {2});
  EXPECT_EMBER_ERROR(multinomial(tensor({0.5, -0.1}, {2}), 1), "[multinomial]", "-0.1", "category 1");
  EXPECT_EMBER_ERROR(multinomial(tensor({0.5, std::nan("")}, {2}), 1), "[multinomial]", "nan");
  EXPECT_EMBER_ERROR(multinomial(tensor({INFINITY, 1.0}, {1, 2}), 1), "[multinomial]", "inf", "row 0");
  EXPECT_EMBER_ERROR(multinomial(tensor({1, 1, 0, 0}, {2, 2}), 1), "[multinomial]", "row 1", "all-zero");
  EXPECT_EMBER_ERROR(multinomial(tensor({1, 0, 1}, {3}), 3, false), "[multinomial]", "3 samples", "only 2");
  EXPECT_EMBER_ERROR(multinomial(p, 0), "[multinomial]", "num_samples", "0");
  EXPECT_EMBER_ERROR(multinomial(zeros({1, 1, 2}), 1), "[multinomial]", "1-D", "[1, 1, 2]");
  EXPECT_EMBER_ERROR(multinomial(tensor_i64({1, 2}, {2}), 1), "[multinomial]", "floating", "int64");
  EXPECT_EMBER_ERROR(multinomial(zeros({2, 0}), 1), "[multinomial]", "at least one category");
  EXPECT_EMBER_ERROR(multinomial(Tensor(), 1), "[multinomial]", "undefined");
  // With replacement, more samples than categories is fine.
  EXPECT_EQ(multinomial(p, 5, true).shape(), (Shape{5}));
}
