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
}

int64_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, Generator& gen) {
  if (vocab <= 0) fail("sampling", "empty logits row");
  params.validate();
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
  if (keep < ids.size() || params.top_p < 1.0) {
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

}  // namespace ember::infer
