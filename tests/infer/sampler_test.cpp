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

TEST(Sampler, MinPDropsUnlikelyTokens) {
  // Probabilities at T=1: ids 1, 3: 0.422; 2: 0.155 (0.37 of the top); 0: 0.057 (0.135); 4: 0.008.
  SamplingParams p;
  p.min_p = 0.3;
  auto h = histogram(p, 3000);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.count(0), 0u);
  p.min_p = 0.5;
  EXPECT_EQ(histogram(p, 2000).size(), 2u);
  p.min_p = 0.1;
  EXPECT_EQ(histogram(p, 4000).size(), 4u);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  // Greedy picks 1 (first of the tied 3.0s); penalising 1 and 3 (seen in the
  // prompt) by 2 leaves 2 (2.0) the largest; a seen negative logit gets more negative.
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0;
  TokenHistory h;
  h.add_prompt({1, 3, 3});
  Generator gen(1);
  EXPECT_EQ(sample(kLogits.data(), 5, p, gen, &h).token, 2);
  p.repetition_penalty = 1.4;  // 3.0 / 1.4 = 2.14 > 2.0: 1 stays ahead
  EXPECT_EQ(sample(kLogits.data(), 5, p, gen, &h).token, 1);
  // Negative: logits {-1, -2}: seen id 0 at -1 * 3 = -3 falls below -2.
  const std::vector<float> neg = {-1.0f, -2.0f};
  TokenHistory h0;
  h0.add_prompt({0});
  p.repetition_penalty = 3.0;
  EXPECT_EQ(sample(neg.data(), 2, p, gen, &h0).token, 1);
  EXPECT_EQ(sample(neg.data(), 2, p, gen, nullptr).token, 0);  // no history: no penalty
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountGeneratedTokensOnly) {
  SamplingParams p;
  p.temperature = 0;
  Generator gen(1);
  TokenHistory h;
  h.add_prompt({2});  // the prompt does not count for these two
  h.add_generated(1);
  h.add_generated(1);
  h.add_generated(3);
  // presence 0.5: 1 -> 2.5, 3 -> 2.5, 2 stays 2.0: tie of 1 and 3, lowest id wins.
  p.presence_penalty = 0.5;
  EXPECT_EQ(sample(kLogits.data(), 5, p, gen, &h).token, 1);
  // frequency 0.3: 1 -> 3 - 0.6 = 2.4, 3 -> 2.7: 3 wins.
  p.presence_penalty = 0;
  p.frequency_penalty = 0.3;
  EXPECT_EQ(sample(kLogits.data(), 5, p, gen, &h).token, 3);
  // both: 1 -> 3 - 1.0 - 1.2 = 0.8, 3 -> 3 - 1.0 - 0.6 = 1.4: 2 (2.0) wins.
  p.presence_penalty = 1.0;
  p.frequency_penalty = 0.6;
  EXPECT_EQ(sample(kLogits.data(), 5, p, gen, &h).token, 2);
  // Negative values encourage repeats.
  p.presence_penalty = -2.0;
  p.frequency_penalty = 0;
  h.clear();
  h.add_generated(4);
  EXPECT_EQ(sample(kLogits.data(), 5, p, gen, &h).token, 1);  // -1 + 2 = 1 < 3
  p.frequency_penalty = -2.0;
  h.add_generated(4);  // count 2: -1 + 2 + 4 = 5
  EXPECT_EQ(sample(kLogits.data(), 5, p, gen, &h).token, 4);
}

TEST(Sampler, LogprobIsLogSoftmaxOfTheRawLogits) {
  double z = 0;
  for (float l : kLogits) z += std::exp(double(l));
  SamplingParams p;
  p.temperature = 0.5;
  p.top_k = 2;
  p.repetition_penalty = 1.5;
  TokenHistory h;
  h.add_prompt({1});
  Generator gen(3);
  for (int i = 0; i < 20; ++i) {
    const Sampled s = sample(kLogits.data(), 5, p, gen, &h);
    EXPECT_NEAR(s.logprob, double(kLogits[size_t(s.token)]) - std::log(z), 1e-5);
  }
}

TEST(Sampler, SampleAndSampleTokenAgreeWithoutPenalties) {
  SamplingParams p{0.8, 3, 0.9};
  Generator a(42), b(42);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample(kLogits.data(), 5, p, a).token, sample_token(kLogits.data(), 5, p, b));
}

TEST(Sampler, BadNewParametersAreErrors) {
  Generator gen(1);
  auto bad = [&](auto set) {
    SamplingParams p;
    set(p);
    try {
      sample(kLogits.data(), 5, p, gen);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(bad([](SamplingParams& p) { p.min_p = 1.5; }).find("min_p must be in [0, 1], got 1.5"), std::string::npos);
  EXPECT_NE(bad([](SamplingParams& p) { p.repetition_penalty = 0; }).find("repetition_penalty must be"), std::string::npos);
  EXPECT_NE(bad([](SamplingParams& p) { p.presence_penalty = 3; }).find("presence_penalty must be in [-2, 2], got 3"),
            std::string::npos);
  EXPECT_NE(bad([](SamplingParams& p) { p.frequency_penalty = -2.5; }).find("frequency_penalty must be in [-2, 2]"),
            std::string::npos);
}

}  // namespace
}  // namespace ember::infer
