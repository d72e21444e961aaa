// Token sampling (see sampler.h). Works on one row on the host: rows are at
// most a vocabulary long, and a partial sort of the candidates is cheaper than
// any tensor round trip.
#include "ember/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ember/core/error.h"

namespace ember::infer {

void SamplingParams::validate() const {
  if (!(temperature >= 0.0) || !std::isfinite(temperature))
    fail("sampling", "temperature must be a finite number >= 0, got ", temperature);
  if (top_k < 0) fail("sampling", "top_k must be >= 0 (0 = no limit), got ", top_k);
  if (!(top_p > 0.0 && top_p <= 1.0)) fail("sampling", "top_p must be in (0, 1], got ", top_p);
  if (!(min_p >= 0.0 && min_p <= 1.0)) fail("sampling", "min_p must be in [0, 1], got ", min_p);
  if (!(repetition_penalty > 0.0) || !std::isfinite(repetition_penalty))
    fail("sampling", "repetition_penalty must be a finite number > 0 (1 = off), got ", repetition_penalty);
  if (!(presence_penalty >= -2.0 && presence_penalty <= 2.0))
    fail("sampling", "presence_penalty must be in [-2, 2], got ", presence_penalty);
  if (!(frequency_penalty >= -2.0 && frequency_penalty <= 2.0))
    fail("sampling", "frequency_penalty must be in [-2, 2], got ", frequency_penalty);
}

void TokenHistory::add_prompt(const std::vector<int64_t>& tokens) {
  for (int64_t t : tokens) ++prompt_[t];
}
void TokenHistory::add_generated(int64_t token) { ++generated_[token]; }
void TokenHistory::clear() {
  prompt_.clear();
  generated_.clear();
}
int64_t TokenHistory::generated_count(int64_t token) const {
  auto it = generated_.find(token);
  return it == generated_.end() ? 0 : it->second;
}

namespace {

float raw_logprob(const float* logits, int64_t vocab, int64_t token) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double z = 0;
  for (int64_t i = 0; i < vocab; ++i) z += std::exp(double(logits[i] - mx));
  return float(double(logits[token] - mx) - std::log(z));
}

int64_t choose(const float* logits, int64_t vocab, const SamplingParams& params, Generator& gen) {
  if (params.temperature == 0.0 || params.top_k == 1) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  // Candidates sorted by logit, descending; ties by id so results do not depend
  // on the sort's stability.
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  std::iota(ids.begin(), ids.end(), 0);
  auto before = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  size_t keep = static_cast<size_t>(vocab);
  if (params.top_k > 0 && params.top_k < vocab) keep = static_cast<size_t>(params.top_k);
  // Plain temperature sampling needs no order at all; the filters do.
  if (keep < ids.size() || params.top_p < 1.0 || params.min_p > 0.0) {
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(), before);
    ids.resize(keep);
  }

  const double inv_t = 1.0 / params.temperature;
  double top = -INFINITY;
  for (int32_t id : ids) top = std::max(top, double(logits[id]));
  std::vector<double> probs(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((double(logits[ids[i]]) - top) * inv_t);
    total += probs[i];
  }
  if (params.top_p < 1.0) {
    double cumulative = 0;
    size_t n = 0;
    while (n < keep) {
      cumulative += probs[n] / total;
      ++n;
      if (cumulative >= params.top_p) break;
    }
    keep = n;
    total = std::accumulate(probs.begin(), probs.begin() + static_cast<std::ptrdiff_t>(keep), 0.0);
  }
  if (params.min_p > 0.0) {
    // probs are sorted descending and probs[0] (the largest) is exp(0) = 1, so
    // the threshold min_p * p_max is min_p in these unnormalised units.
    size_t n = 1;
    while (n < keep && probs[n] >= params.min_p * probs[0]) ++n;
    keep = n;
    total = std::accumulate(probs.begin(), probs.begin() + static_cast<std::ptrdiff_t>(keep), 0.0);
  }
  const GeneratorState s = gen.state();
  const uint64_t counter = gen.reserve(1);
  const auto w = philox4x32(s.seed, 0, counter);
  const double u = uniform_double(w[0], w[1]) * total;
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (u < cumulative) return ids[i];
  }
  return ids[keep - 1];  // u within rounding of the total
}

}  // namespace

Sampled sample(const float* logits, int64_t vocab, const SamplingParams& params, Generator& gen,
               const TokenHistory* history) {
  if (vocab <= 0) fail("sampling", "empty logits row");
  params.validate();
  Sampled out;
  if (params.has_penalties() && history) {
    std::vector<float> adjusted(logits, logits + vocab);
    if (params.repetition_penalty != 1.0) {
      const float r = float(params.repetition_penalty);
      auto penalise = [&](int64_t t) {
        if (t < 0 || t >= vocab) return;
        float& l = adjusted[size_t(t)];
        l = logits[t] > 0 ? logits[t] / r : logits[t] * r;  // from the raw value: once per token
      };
      for (const auto& [t, n] : history->prompt()) penalise(t);
      for (const auto& [t, n] : history->generated()) penalise(t);
    }
    for (const auto& [t, n] : history->generated()) {
      if (t < 0 || t >= vocab) continue;
      adjusted[size_t(t)] -= float(params.presence_penalty + params.frequency_penalty * double(n));
    }
    out.token = choose(adjusted.data(), vocab, params, gen);
  } else {
    out.token = choose(logits, vocab, params, gen);
  }
  out.logprob = raw_logprob(logits, vocab, out.token);
  return out;
}

int64_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, Generator& gen) {
  if (vocab <= 0) fail("sampling", "empty logits row");
  params.validate();
  return choose(logits, vocab, params, gen);
}

}  // namespace ember::infer
