// Supervised fine-tuning (SFT): the first stage of the ChatGPT recipe, behind
// `ember sft`.
//
// Starts from a pretrained checkpoint (its trainer.json config, model.safetensors
// and tokenizer/), renders conversations with the chat template and trains on
// the assistant's tokens only: every other target is -1, which GPT::loss
// ignores. Conversations are packed whole into rows of seq_len + 1 tokens
// (first fit, in a seeded shuffled order per epoch); the rest of a row is
// padding whose targets are ignored. Evaluation: loss on held-out conversations
// and, when a prompts file with grading keys is given (the curriculum's
// prompts_heldout.jsonl), greedy replies graded by the curriculum's oracle.
// Checkpoints use train/checkpoint.h's layout, with "kind": "sft" in trainer.json.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ember/chat/eval.h"
#include "ember/chat/jsonl.h"
#include "ember/chat/template.h"
#include "ember/core/tensor.h"
#include "ember/models/gpt.h"

namespace ember::train {
class DataParallelRun;
}

namespace ember::chat {

struct SftOptions {
  std::string init;         // a pretrain (or sft) checkpoint folder, or a run folder with `latest`
  std::string data;         // conversations JSONL (training)
  std::string val_data;     // conversations JSONL (held-out loss); empty: none
  std::string prompts;      // prompts JSONL with meta.grade keys (oracle); empty: none
  std::string out_dir;
  int64_t steps = 200;
  int64_t batch_size = 8;
  int64_t seq_len = 0;      // 0: the model's block_size
  double lr = 3e-4;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = -1;  // -1: 5% of steps
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  int64_t eval_every = 50;    // 0: only at the end
  int64_t eval_prompts = 64;  // held-out prompts generated per evaluation (0: all)
  int64_t max_new_tokens = 48;
  int64_t checkpoint_every = 0;  // 0: only at the end
  int keep_checkpoints = 2;
  uint64_t seed = 1337;
  int threads = 0;
  bool quiet = false;
  // Continue the run in out_dir from its latest checkpoint: model, optimizer,
  // RNG and data position are restored, hyper-parameters come from the
  // checkpoint (only steps may change), and the losses after resuming equal an
  // uninterrupted run's. SIGINT/SIGTERM stop a run at a step boundary with a
  // checkpoint.
  bool resume = false;
  int64_t stop_after = 0;  // testing aid: stop after this step as if interrupted; 0 = off
  nlohmann::json to_json() const;
  void update_from_json(const nlohmann::json& j);  // the hyper-parameters a checkpoint records
};

struct SftResult {
  int64_t step = 0;
  bool interrupted = false;  // stopped by a signal or stop_after, with a checkpoint
  int signal = 0;            // the signal that stopped it (SIGINT, SIGTERM), if any
  double train_loss = 0;
  double val_loss_before = 0, val_loss = 0;  // NaN when no val data
  OracleResult oracle_before, oracle;
  std::string checkpoint;
};

SftResult sft(SftOptions options);
// Draws <out_dir>/loss.svg from a run's metrics records: at the end of
// training, and again by the speedrun when a hard kill came between the last
// checkpoint and the picture.
void plot_sft_curves(const std::string& out_dir, const std::vector<nlohmann::json>& records);

// Packing: conversations (in `order`) go whole, first fit, into rows of T + 1
// tokens padded with pad_id. Returns the rows' ids; `labels` gets, per row and
// position, the id where it is assistant output and -1 elsewhere, so that
// input = row[0, T) and target = labels[1, T + 1). Conversations longer than
// T + 1 tokens are cut (counted in `truncated`).
std::vector<std::vector<int64_t>> pack_rows(const std::vector<RenderedChat>& chats, const std::vector<size_t>& order,
                                            int64_t T, int64_t pad_id, std::vector<std::vector<int64_t>>* labels,
                                            int64_t* truncated = nullptr);
// Rows [from, to) of packed rows as (input, target) tensors [to - from, T]
// (the targets from `labels`); `trained`, when given, gets their count of
// trained target tokens.
std::pair<Tensor, Tensor> packed_batch(const std::vector<std::vector<int64_t>>& rows,
                                       const std::vector<std::vector<int64_t>>& labels, size_t from, size_t to,
                                       int64_t T, int64_t* trained = nullptr);
// Each conversation rendered with the chat template.
std::vector<RenderedChat> render_conversations(const ChatTemplate& tmpl, const std::vector<Conversation>& convs);
// The targets of one rendered conversation ([ids.size() - 1], -1 where not trained).
std::vector<int64_t> sft_targets(const RenderedChat& chat);

// Mean loss per trained token over `chats` (packed rows of T). With `dp`
// (data parallel, every rank calls it) the batches are spread over the ranks
// and the sums added up: the same number as one process.
double evaluate_sft_loss(models::GPT& model, const std::vector<RenderedChat>& chats, int64_t T, int64_t batch,
                         int64_t pad_id, const train::DataParallelRun* dp = nullptr);

}  // namespace ember::chat
