// The reward model of the ChatGPT recipe, behind `ember reward`, and the
// scoring API PPO uses.
//
// A models::ValueModel (GPT trunk + zero-initialised scalar head) starts from
// an SFT (or pretrain) checkpoint's trunk and learns to score a response: the
// head's value at the response's last token (<|im_end|>) of the row
// render_prompt(prompt) + reply + <|im_end|> (preference_batch.h). Training
// data are ranked lists (best first); the loss is Bradley-Terry over all
// K(K-1)/2 pairs of each list, -log sigmoid(r_better - r_worse), the mean over
// a list's pairs, then over the batch's lists (InstructGPT): a list's
// responses share one forward pass.
//
// Evaluation (step 0, every eval_every, the end) on held-out lists: the loss,
// pairwise accuracy (the fraction of all held-out pairs the model orders
// correctly; a tie counts one half, so the zero-headed model at step 0 scores
// exactly 0.5), and the mean and standard deviation of the rewards of the best
// responses and of all responses. For PPO's reward normalisation the
// checkpoint's trainer.json stores
//   "reward_mean"  the best responses' mean: InstructGPT shifts the reward so
//                  that demonstrations score 0 on average;
//   "reward_std"   the spread over all responses, good and bad: the best
//                  responses alone can score almost alike (std ~0.002 on the
//                  tiny curriculum), and dividing by that would blow rewards up
//                  by orders of magnitude;
// (and "chosen_reward_std", "response_reward_mean" for the record), from the
// held-out lists, or from the training lists when there is no held-out file
// ("reward_stats": "val" or "train").
//
// The likelihood feature (chat/likelihood_feature.h, --likelihood init, the
// default): the reward is the head's score plus a fitted weight times the
// lowest log-probability the --init model gives a token of the reply. The init model stays
// frozen; its log-probabilities of the held-out lists and of the first
// likelihood_fit_lists training lists are computed once, and at every
// evaluation and checkpoint the weight is fitted on those training lists to
// the head as it is then (so the statistics above, the accuracy and the loss
// are the combined reward's; "val_accuracy_head" records the head's alone).
// A checkpoint then carries the frozen model (likelihood/model.safetensors)
// and trainer.json "likelihood_weight", so it stands alone. --likelihood none:
// the head alone, as before.
//
// Checkpoints: train/checkpoint.h's layout, "kind": "reward", the ValueModel's
// state (transformer.* + score.*), the tokenizer carried; at the end, every
// checkpoint_every steps and when a run stops (SIGINT/SIGTERM, stop_after).
// Every checkpoint is a complete reward model: its statistics are computed
// when it is saved, from the weights it holds, so PPO never reads a model
// whose statistics belong to other weights (or are missing). --resume
// continues a run as SFT's does (train/finetune.h): model, optimizer, RNG and
// the batches' position (epoch and cursor of the seeded order) are restored
// and the losses equal an uninterrupted run's.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/chat/jsonl.h"
#include "ember/chat/likelihood_feature.h"
#include "ember/chat/preference_batch.h"
#include "ember/chat/template.h"
#include "ember/models/value_model.h"
#include "ember/train/model_checkpoint.h"

namespace ember::chat {

struct RewardOptions {
  std::string init;      // an sft (or pretrain) checkpoint folder, or a run folder with `latest`
  std::string data;      // preferences JSONL (training)
  std::string val_data;  // preferences JSONL (held-out); empty: none
  std::string out_dir;
  int64_t steps = 200;
  int64_t batch_size = 16;  // preference records (ranked lists) per step
  int64_t max_len = 0;      // tokens per prompt + response row; 0: the model's block_size
  double lr = 1e-4;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = -1;  // -1: 5% of steps
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  int64_t eval_every = 50;  // 0: only at step 0 and the end
  int64_t checkpoint_every = 0;  // 0: only at the end
  int keep_checkpoints = 2;
  uint64_t seed = 1337;
  int threads = 0;
  bool quiet = false;
  // Continue the run in out_dir from its latest checkpoint; hyper-parameters
  // come from the checkpoint (only steps may change).
  bool resume = false;
  int64_t stop_after = 0;  // testing aid: stop after this step as if interrupted; 0 = off
  std::string likelihood = "init";      // "init" (the feature, see above) or "none"
  int64_t likelihood_fit_lists = 300;   // the first training lists the feature's weight is fitted on
  nlohmann::json to_json() const;
  void update_from_json(const nlohmann::json& j);  // the hyper-parameters a checkpoint records
};

// One evaluation over ranked lists.
struct RewardEval {
  int64_t lists = 0, pairs = 0;
  double loss = 0;         // Bradley-Terry loss, list-weighted as in training
  double accuracy = 0;     // fraction of pairs ordered correctly (ties count 1/2)
  double chosen_mean = 0;  // mean reward of each list's best response
  double chosen_std = 0;   // its (population) standard deviation
  double all_mean = 0;     // mean reward of every response
  double all_std = 0;      // its (population) standard deviation
  PairBreakdown breakdown; // accuracy by kind of question and by pair of labels, where the lists carry them
  // With the likelihood feature, the figures above are the combined reward's;
  // head_accuracy is the head's alone (equal to accuracy without the feature).
  double head_accuracy = 0;
  double likelihood_weight = 0;
  bool with_likelihood = false;  // the feature took part (its fitted weight may still be 0)
};

struct RewardResult {
  int64_t step = 0;
  bool interrupted = false;  // stopped by a signal or stop_after, with a checkpoint
  int signal = 0;            // the signal that stopped it, if any
  double train_loss = 0;
  // Zero-initialised (lists == 0) when no val data; val_before also when
  // resumed (the run it continues measured it: metrics.jsonl, step 0).
  RewardEval val_before, val;
  double reward_mean = 0, reward_std = 1;  // as stored in the last checkpoint's trainer.json (see above)
  std::string checkpoint;
};

RewardResult train_reward_model(RewardOptions options);
// Draws <out_dir>/reward.svg (train loss, val loss, val pairwise accuracy) from
// a run's metrics records: at the end of training, and again by the speedrun
// when a hard kill came between the last checkpoint and the picture.
void plot_reward_curves(const std::string& out_dir, const std::vector<nlohmann::json>& records);

// Evaluates `model` (in eval mode, no gradients) on `records`, adding
// `likelihood` (when given and active) with its weight; rows longer than
// max_len lose prompt tokens from the left. `batch` lists per forward pass.
RewardEval evaluate_reward_model(models::ValueModel& model, const ChatTemplate& tmpl,
                                 const std::vector<PreferenceRecord>& records, int64_t max_len, int64_t batch = 16,
                                 const LikelihoodFeature* likelihood = nullptr);
// The fraction of all pairs of `records`' ranked lists that `model` orders
// correctly (ties count 1/2).
double pairwise_accuracy(models::ValueModel& model, const ChatTemplate& tmpl,
                         const std::vector<PreferenceRecord>& records, int64_t max_len, int64_t batch = 16);

// For PPO: the reward of each row of token ids, where a row is the prompt as
// rendered by render_prompt() followed by the generated reply including its
// final <|im_end|> (the score is read at the row's last token, so a reply cut
// off before <|im_end|> is scored where it stops). Rows are scored `batch` at
// a time, in length groups right-padded with <|im_end|> (padding cannot change
// a score: the model is causal); a row longer than block_size keeps its last block_size
// tokens, as training cut prompts from the left. No gradients, eval mode
// (restored after). Raw rewards: normalise with the checkpoint's reward_mean /
// reward_std (RewardModelCheckpoint) if wanted.
std::vector<float> score_conversations(models::ValueModel& model, const ChatTemplate& tmpl,
                                       const std::vector<std::vector<int64_t>>& token_rows, int64_t batch = 16);
// One reply: render_prompt(prompt) + reply + <|im_end|>, scored as above.
float score_response(models::ValueModel& model, const ChatTemplate& tmpl, const Conversation& prompt,
                     const std::string& reply);

// A trained reward model opened for use (PPO, eval): the checkpoint must be of
// kind "reward"; `op` names the caller in errors ("ppo").
// `what` names the checkpoint in errors ("--reward"). A checkpoint whose
// trainer.json has "likelihood_weight" loads its frozen language model too
// (an error names the file when it is missing).
struct RewardModelCheckpoint {
  train::ModelCheckpoint checkpoint;          // folder, trainer.json, config, tokenizer paths
  std::unique_ptr<models::ValueModel> model;  // weights loaded, eval mode
  LikelihoodFeature likelihood;               // inactive for a head-only reward model
  double reward_mean = 0, reward_std = 1;     // trainer.json (0 / 1 when absent)
};
RewardModelCheckpoint load_reward_model(const std::string& path, const std::string& op = "reward",
                                        const std::string& what = "the reward model");

// The raw rewards of rows as score_conversations reads them (prompt + reply +
// <|im_end|>, reply i starting at starts[i]): the head's score plus, for a
// reward model with the likelihood feature, its weight times the lowest
// log-probability the frozen model gives a reply token. No gradients.
std::vector<double> score_replies(const RewardModelCheckpoint& rm, const ChatTemplate& tmpl,
                                  const std::vector<std::vector<int64_t>>& rows, const std::vector<int64_t>& starts,
                                  int64_t batch = 32);

}  // namespace ember::chat
