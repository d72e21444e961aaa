// Token sampling: greedy, temperature, top-k, top-p, reproducibility, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "ember/core/error.h"
#include "ember/infer/sampler.h"

namespace ember::infer {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};

std::map<int64_t, int> histogram(const SamplingParams& p, int draws, uint64_t seed = 5) {
  Generator gen(seed);
  std::map<int64_t, int> h;
  for (int i = 0; i < draws; ++i) ++h[sample_token(kLogits.data(), int64_t(kLogits.size()), p, gen)];
  return h;
}

TEST(Sampler, GreedyTakesTheFirstLargest) {
  Generator gen(1);
  EXPECT_EQ(sample_token(kLogits.data(), 5, {0.0, 0, 1.0}, gen), 1);
  EXPECT_EQ(sample_token(kLogits.data(), 5, {1.0, 1, 1.0}, gen), 1);  // top-k 1 is greedy
  EXPECT_EQ(gen.state().offset, 0u);                                   // greedy draws nothing
}

TEST(Sampler, TemperatureOneFollowsSoftmax) {
  const int draws = 40000;
  auto h = histogram({1.0, 0, 1.0}, draws);
  double z = 0;
  for (float l : kLogits) z += std::exp(double(l));
  for (int64_t i = 0; i < 5; ++i) {
    const double p = std::exp(double(kLogits[size_t(i)])) / z;
    const double sd = std::sqrt(p * (1 - p) / draws);
    EXPECT_NEAR(double(h[i]) / draws, p, 5 * sd + 1e-9) << "token " << i;
  }
}

TEST(Sampler, TopKAndTopPRestrictTheCandidates) {
  auto k2 = histogram({1.0, 2, 1.0}, 2000);  // ties at 3.0: ids 1 and 3
  EXPECT_EQ(k2.size(), 2u);
  EXPECT_GT(k2[1], 800);
  EXPECT_GT(k2[3], 800);
  // Probabilities at T=1: 0.422, 0.422, 0.155, 0.057, 0.008 (ids 1, 3, 2, 0, 4):
  // p = 0.5 needs the two largest, p = 0.9 the three largest.
  auto p5 = histogram({1.0, 0, 0.5}, 2000);
  EXPECT_EQ(p5.size(), 2u);
  auto p9 = histogram({1.0, 0, 0.9}, 4000);
  EXPECT_EQ(p9.size(), 3u);
  EXPECT_EQ(p9.count(0), 0u);
}

TEST(Sampler, LowTemperatureSharpensAndSeedsReproduce) {
  auto cold = histogram({0.05, 0, 1.0}, 1000);
  EXPECT_EQ(cold[1] + cold[3], 1000);
  EXPECT_EQ(histogram({0.7, 3, 0.9}, 300, 11), histogram({0.7, 3, 0.9}, 300, 11));
  EXPECT_NE(histogram({1.0, 0, 1.0}, 300, 11), histogram({1.0, 0, 1.0}, 300, 12));
}

TEST(Sampler, BadParametersAreErrors) {
  Generator gen(1);
  auto message = [&](SamplingParams p) {
    try {
      sample_token(kLogits.data(), 5, p, gen);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({-1.0, 0, 1.0}).find("temperature must be a finite number >= 0, got -1"), std::string::npos);
  EXPECT_NE(message({1.0, -2, 1.0}).find("top_k must be >= 0"), std::string::npos);
  EXPECT_NE(message({1.0, 0, 0.0}).find("top_p must be in (0, 1], got 0"), std::string::npos);
  EXPECT_NE(message({1.0, 0, 1.5}).find("top_p must be in (0, 1], got 1.5"), std::string::npos);
  EXPECT_THROW(sample_token(kLogits.data(), 0, {}, gen), Error);
}

}  // namespace
}  // namespace ember::infer
