// Direct Preference Optimization (Rafailov et al. 2023), behind `ember dpo`:
// the policy learns from preference data directly, without a reward model or
// RL.
//
// The policy starts from an SFT checkpoint; the frozen reference is the same
// checkpoint (or --ref, which must share its tokenizer). A response's
// log-probability is the sum of log pi(token) over its tokens only (the reply
// and its <|im_end|>, in rows render_prompt(prompt) + reply + <|im_end|>, see
// preference_batch.h). With the implicit reward
//   r(y) = beta * (log pi(y|x) - log pi_ref(y|x))
// the loss of a pair (better y_w, worse y_l) is -log sigmoid(r(y_w) - r(y_l)).
//
// Pairs: every pair of a ranked list (K responses -> K(K-1)/2 pairs), weighted
// like the reward model's (the mean over a list's pairs, then over lists), so
// DPO and the reward model learn from exactly the same comparisons and each
// response is forwarded once per step; with chosen/rejected data this is the
// paper's loss. Reference log-probabilities are computed once per response
// (no gradients) and cached (DpoReference below; under data parallel the
// one-time pass is split over the ranks). Dropout is off in both models (TRL's default):
// otherwise policy == reference would not hold at step 0 (loss exactly log 2)
// and the implicit rewards would carry dropout noise.
//
// Logged per step: loss, reward accuracy (fraction of pairs with r(y_w) >
// r(y_l)), the mean margin r(y_w) - r(y_l), the mean implicit rewards of the
// better and worse responses. Evaluation (step 0, every eval_every, the end):
// the same on held-out lists; the oracle (greedy replies to held-out prompts
// graded by the curriculum, chat/eval.h's evaluate_oracle) before and after.
// Checkpoints: "kind": "dpo", a GPT (serve, eval and PPO load it like SFT's),
// at the end, every checkpoint_every steps and when a run stops (SIGINT/SIGTERM,
// stop_after). --resume continues a run as SFT's does (train/finetune.h):
// policy, optimizer, RNG and the batches' position (epoch and cursor of the
// seeded order) are restored, the reference comes from the checkpoint's
// options, and the losses equal an uninterrupted run's.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/chat/eval.h"
#include "ember/chat/preference_batch.h"
#include "ember/models/gpt.h"

namespace ember::train {
class DataParallelRun;
}

namespace ember::chat {

// The frozen reference's log-probabilities of the lists' responses, computed
// once per list (no gradients) and kept. A list's values are computed together
// with the other lists of its fixed block (indices [kB, (k + 1)B), B =
// `block`): a forward pass rounds differently with other rows beside it, so
// with blocks a resumed run (whose cache starts empty) and a block computed on
// another rank give exactly the bits one uninterrupted process gets.
class DpoReference {
 public:
  DpoReference(models::GPT& reference, const std::vector<RankedRows>& lists, int64_t pad_id, size_t block);
  // The values of lists `which`, concatenated, best response first; missing
  // blocks are computed here.
  Tensor get(const std::vector<size_t>& which, DType dtype);
  // Data parallel: called on every rank with the same global batch `global`
  // before each rank get()s its share. The blocks the batch needs that are not
  // cached (the same on every rank: every rank's cache holds the same blocks)
  // are split over the ranks, block j of them on rank j mod N, and the values
  // all-gathered, so each block is computed once instead of on every rank
  // whose share touches it. A no-op on one process.
  void prefetch(const std::vector<size_t>& global, const train::DataParallelRun& dp);
  int64_t blocks_computed() const { return computed_; }  // by this process

 private:
  void fill_block(size_t k);
  std::vector<size_t> block_lists(size_t k) const;

  models::GPT& ref_;
  const std::vector<RankedRows>& lists_;
  int64_t pad_;
  size_t block_;
  std::vector<std::vector<float>> cache_;
  int64_t computed_ = 0;
};

struct DpoOptions {
  std::string init;      // an sft checkpoint folder (or pretrain/dpo), or a run folder with `latest`
  std::string ref;       // the reference checkpoint; empty: init
  std::string data;      // preferences JSONL (training)
  std::string val_data;  // preferences JSONL (held-out); empty: none
  std::string prompts;   // prompts JSONL with meta.grade keys (oracle); empty: none
  std::string out_dir;
  double beta = 0.1;
  int64_t steps = 200;
  int64_t batch_size = 8;  // preference records (ranked lists) per step
  int64_t max_len = 0;     // tokens per prompt + response row; 0: the model's block_size
  double lr = 1e-5;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = -1;  // -1: 5% of steps
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  int64_t eval_every = 50;    // 0: only at step 0 and the end
  int64_t eval_prompts = 64;  // held-out prompts generated per oracle evaluation (0: all)
  int64_t max_new_tokens = 48;
  int64_t checkpoint_every = 0;  // 0: only at the end
  int keep_checkpoints = 2;
  uint64_t seed = 1337;
  int threads = 0;
  bool quiet = false;
  // Continue the run in out_dir from its latest checkpoint; hyper-parameters
  // come from the checkpoint (only steps may change).
  bool resume = false;
  int64_t stop_after = 0;  // testing aid: stop after this step as if interrupted; 0 = off
  nlohmann::json to_json() const;
  void update_from_json(const nlohmann::json& j);  // the hyper-parameters a checkpoint records
};

// DPO statistics over a set of ranked lists (means over pairs, unweighted).
struct DpoEval {
  int64_t lists = 0, pairs = 0;
  double loss = 0;             // list-weighted, as in training
  double accuracy = 0;         // fraction of pairs with margin > 0 (ties count 1/2)
  double margin = 0;           // mean r(y_w) - r(y_l)
  double chosen_reward = 0;    // mean r(y_w)
  double rejected_reward = 0;  // mean r(y_l)
  PairBreakdown breakdown;     // accuracy by kind of question and by pair of labels (preference_batch.h)
};

struct DpoResult {
  int64_t step = 0;
  bool interrupted = false;  // stopped by a signal or stop_after, with a checkpoint
  int signal = 0;            // the signal that stopped it, if any
  double train_loss = 0;
  // lists == 0 when no val data, prompts == 0 when no prompts file; the
  // "before" ones also when resumed (the run it continues measured them:
  // metrics.jsonl, step 0).
  DpoEval val_before, val;
  OracleResult oracle_before, oracle;
  std::string checkpoint;
};

DpoResult dpo(DpoOptions options);
// Draws <out_dir>/dpo.svg (train loss and margin, val loss and accuracy) from a
// run's metrics records: at the end of training, and again by the speedrun
// when a hard kill came between the last checkpoint and the picture.
void plot_dpo_curves(const std::string& out_dir, const std::vector<nlohmann::json>& records, double beta);

}  // namespace ember::chat
