// The reward model's likelihood feature (see the header).
#include "ember/chat/likelihood_feature.h"

#include <algorithm>
#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/core/random.h"
#include "ember/nn/module_io.h"

namespace ember::chat {

std::shared_ptr<models::GPT> load_likelihood_model(const models::GPTConfig& config, const std::string& model_path) {
  Generator scratch(0);  // the initial weights are overwritten: keep the global generator's stream untouched
  auto lm = std::make_shared<models::GPT>(config, &scratch);
  nn::load_module(*lm, model_path);
  lm->eval();
  return lm;
}

std::vector<double> reply_lowest_logps(models::GPT& lm, const std::vector<std::vector<int64_t>>& rows,
                                     const std::vector<int64_t>& starts, int64_t pad_id, int64_t batch) {
  if (rows.size() != starts.size())
    fail("reward", "likelihood feature: ", rows.size(), " rows but ", starts.size(), " reply starts");
  if (batch <= 0) fail("reward", "likelihood feature: batch must be positive, got ", batch);
  NoGradGuard no_grad;
  const size_t block = size_t(lm.config().block_size);
  std::vector<double> out;
  out.reserve(rows.size());
  std::vector<std::vector<int64_t>> cut;  // rows that had to lose their start
  for (size_t from = 0; from < rows.size(); from += size_t(batch)) {
    const size_t to = std::min(rows.size(), from + size_t(batch));
    const auto sub = rows_in_context(rows, from, to, block, cut, "reward");
    std::vector<int64_t> sub_starts;
    for (size_t i = from; i < to; ++i) {
      const int64_t start = starts[i], dropped = int64_t(rows[i].size() - sub[i - from]->size());
      if (start < 0 || start >= int64_t(rows[i].size()))
        fail("reward", "likelihood feature: row ", i, " has ", rows[i].size(), " tokens and its reply starts at ", start);
      sub_starts.push_back(std::max<int64_t>(1, start - dropped));  // position 0 predicts nothing
    }
    for (float v : rows_logps(lm, sub, sub_starts, pad_id, /*lowest=*/true).to_vector<float>()) out.push_back(v);
  }
  return out;
}

std::vector<double> lists_lowest_logps(models::GPT& lm, const std::vector<RankedRows>& lists, int64_t pad_id,
                                     int64_t batch) {
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> starts;
  for (const RankedRows& l : lists)
    for (size_t r = 0; r < l.rows.size(); ++r) rows.push_back(l.rows[r]), starts.push_back(l.response_start[r]);
  return reply_lowest_logps(lm, rows, starts, pad_id, batch);
}

double lists_pairwise_accuracy(const std::vector<double>& scores, const std::vector<int64_t>& sizes) {
  double correct = 0;
  int64_t pairs = 0;
  size_t off = 0;
  for (const int64_t k : sizes) {
    if (off + size_t(k) > scores.size())
      fail("reward", "pairwise accuracy: lists of ", off + size_t(k), "+ responses but ", scores.size(), " scores");
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = i + 1; j < k; ++j, ++pairs) correct += pair_credit(scores[off + size_t(i)] - scores[off + size_t(j)]);
    off += size_t(k);
  }
  return pairs ? correct / double(pairs) : 0.0;
}

double fit_likelihood_weight(const std::vector<double>& head, const std::vector<double>& feature,
                             const std::vector<int64_t>& sizes) {
  if (head.size() != feature.size())
    fail("reward", "likelihood feature: ", head.size(), " head scores but ", feature.size(), " feature values");
  double mean = 0, sq = 0;
  for (double h : head) mean += h;
  mean /= double(std::max<size_t>(1, head.size()));
  for (double h : head) sq += (h - mean) * (h - mean);
  const double spread = std::sqrt(sq / double(std::max<size_t>(1, head.size())));
  // A zero head (step 0) ranks by the feature alone at any positive weight: the unit spread keeps w finite.
  const double unit = spread > 1e-6 ? spread : 1.0;
  std::vector<double> mixed(head.size());
  double best_w = 0, best = lists_pairwise_accuracy(head, sizes);
  // 0.001 x 1.15^k up to 10: 66 weights besides 0, each 15% above the last.
  for (double w = 1e-3; w <= 10.0; w *= 1.15) {
    for (size_t i = 0; i < head.size(); ++i) mixed[i] = head[i] + w * unit * feature[i];
    const double acc = lists_pairwise_accuracy(mixed, sizes);
    if (acc > best) best = acc, best_w = w * unit;
  }
  return best_w;
}

}  // namespace ember::chat
