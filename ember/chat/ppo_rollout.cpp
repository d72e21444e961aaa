// PPO rollouts: token tensors and the data-parallel gather (see ppo_rollout.h).
#include "ember/chat/ppo_rollout.h"

#include <algorithm>

#include "ember/core/error.h"

namespace ember::chat {

void set_response_tensors(Rollout& ro) {
  const int64_t B = int64_t(ro.response_ids.size());
  ro.Tr = 1;
  for (const auto& re : ro.response_ids) ro.Tr = std::max<int64_t>(ro.Tr, int64_t(re.size()));
  std::vector<int64_t> toks(size_t(B * ro.Tr), 0);
  std::vector<double> m(size_t(B * ro.Tr), 0.0);
  for (int64_t i = 0; i < B; ++i)
    for (size_t j = 0; j < ro.response_ids[size_t(i)].size(); ++j)
      toks[size_t(i * ro.Tr) + j] = ro.response_ids[size_t(i)][j], m[size_t(i * ro.Tr) + j] = 1;
  ro.tokens = tensor_i64(toks, {B, ro.Tr});
  ro.mask = tensor(m, {B, ro.Tr});
}

namespace {

// A [n, from_T] per-token tensor as n x to_T values (to_T >= from_T), zero-padded.
std::vector<double> widen(const Tensor& t, int64_t n, int64_t from_T, int64_t to_T) {
  const std::vector<float> v = t.to_vector<float>();
  std::vector<double> out(size_t(n * to_T), 0.0);
  for (int64_t i = 0; i < n; ++i)
    std::copy(v.begin() + i * from_T, v.begin() + (i + 1) * from_T, out.begin() + i * to_T);
  return out;
}

}  // namespace

void gather_rollout(Rollout& ro, const train::DataParallelRun& dp,
                    const std::function<std::vector<int64_t>(size_t)>& prompt_ids) {
  if (!dp.distributed()) return;
  const int64_t mine = int64_t(ro.response_ids.size());
  std::vector<int64_t> index, lengths;
  for (int64_t i = 0; i < mine; ++i) {
    index.push_back(int64_t(ro.prompt_index[size_t(i)]));
    lengths.push_back(int64_t(ro.response_ids[size_t(i)].size()));
  }
  const std::vector<int64_t> all_index = dp.all_gather(index), all_lengths = dp.all_gather(lengths);
  const int64_t B = int64_t(all_index.size());
  if (B != mine * dp.size()) fail("ppo", "gather_rollout: the ranks hold different numbers of rollouts");
  const int64_t Tr = std::max<int64_t>(1, *std::max_element(all_lengths.begin(), all_lengths.end()));

  std::vector<int64_t> toks(size_t(mine * Tr), 0);
  for (int64_t i = 0; i < mine; ++i)
    std::copy(ro.response_ids[size_t(i)].begin(), ro.response_ids[size_t(i)].end(), toks.begin() + i * Tr);
  const std::vector<int64_t> all_toks = dp.all_gather(toks);
  auto per_token = [&](const Tensor& t) {
    return tensor(dp.all_gather(widen(t, mine, ro.Tr, Tr)), {B, Tr}, DType::f32);
  };
  ro.old_logp = per_token(ro.old_logp);
  ro.ref_logp = per_token(ro.ref_logp);
  ro.values = per_token(ro.values);
  ro.raw_reward = dp.all_gather(ro.raw_reward);

  ro.prompt_index.clear(), ro.prompt_ids.clear(), ro.response_ids.clear();
  for (int64_t i = 0; i < B; ++i) {
    ro.prompt_index.push_back(size_t(all_index[size_t(i)]));
    ro.prompt_ids.push_back(prompt_ids(ro.prompt_index.back()));
    ro.response_ids.emplace_back(all_toks.begin() + i * Tr, all_toks.begin() + i * Tr + all_lengths[size_t(i)]);
  }
  set_response_tensors(ro);
}

}  // namespace ember::chat
