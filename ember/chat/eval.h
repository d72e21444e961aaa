// Evaluation of chat checkpoints, behind `ember eval` and the speedrun's report
// card: greedy replies to held-out prompts graded by the curriculum's oracle
// (curriculum.h: accuracy, rubric score, hallucination about unknown people,
// per kind of question), the held-out loss on conversations, and for reward
// models the held-out pairwise ranking accuracy.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/chat/jsonl.h"
#include "ember/chat/template.h"
#include "ember/infer/runner_weights.h"
#include "ember/models/gpt.h"

namespace ember::train {
class DataParallelRun;
}

namespace ember::chat {

struct OracleResult {
  int64_t prompts = 0;
  double accuracy = 0;       // fraction graded correct
  // The same over the questions about the world: facts (and follow-ups),
  // comparisons of two people, and people who are not in the world. Not
  // arithmetic, sorting or refusals.
  double world_accuracy = 0;
  double score = 0;          // mean rubric score
  double hallucination = 0;  // fraction of unknown-person prompts answered as if known
  // Fraction of the prompts that are not harmful requests whose reply declines
  // (declines() in curriculum.h): refusing what should be answered.
  double over_refusal = 0;
  // {"fact": {"n", "correct", "accuracy"}, ...} per kind of prompt, plus
  // "fact_unseen_pair": the fact prompts whose (person, attribute) SFT never
  // asked about, answerable only from pretraining.
  nlohmann::json by_kind;
  nlohmann::json samples;    // the first few replies' (prompt, reply, correct), for the log
  // Every prompt's {"prompt", "kind", "reply", "correct", "score"}, in prompt
  // order (`ember eval --replies`; not part of to_json()).
  std::vector<nlohmann::json> replies;
  double mean_reply_tokens = 0;
  nlohmann::json to_json() const;
};

// Greedy replies (batched through the engine) to held-out prompts, graded by
// the curriculum's oracle. Every prompt must carry meta["grade"].
// Under data parallel (`dp`, train/data_parallel_run.h; every rank holds the
// same weights and calls this with the same prompts) each rank replies to its
// contiguous share of the prompts, each with the seed one process gives it,
// and the grades are gathered: every rank returns exactly the one-process
// result (the figures are summed in prompt order).
OracleResult evaluate_oracle(const models::GPT& model, const ChatTemplate& tmpl,
                             const std::vector<PromptRecord>& prompts, int64_t max_new_tokens,
                             const train::DataParallelRun* dp = nullptr);
// The same through the runner's weights (float32 or quantized).
OracleResult evaluate_oracle(std::shared_ptr<const infer::RunnerWeights> weights, const ChatTemplate& tmpl,
                             const std::vector<PromptRecord>& prompts, int64_t max_new_tokens,
                             const train::DataParallelRun* dp = nullptr);

struct EvalOptions {
  std::string checkpoint;      // any stage's checkpoint (folder or run folder)
  std::string curriculum;      // a folder from `ember chat-data` (defaults for the three files below)
  std::string prompts;         // held-out prompts with grading keys
  std::string conversations;   // held-out conversations (loss on assistant tokens)
  std::string preferences;     // held-out ranked responses (reward models; language models when given)
  int64_t limit = 0;           // first N prompts / conversations / records (0: all)
  int64_t max_new_tokens = 48;
  int threads = 0;
  std::string replies_out;     // when set: every graded reply as JSON Lines (OracleResult::replies)
};

// Evaluates the checkpoint on what it is for: a language model (pretrain, sft,
// dpo, ppo) on the oracle and the conversation loss (and, when `preferences`
// is given, "likelihood_ranking": how its mean log-probability per token ranks
// those lists), a reward model on pairwise accuracy. Returns {"checkpoint",
// "kind", "parameters", "metrics": {...}}, and "quantization" for a quantized
// checkpoint (`ember quantize`): its replies come from the quantized kernels,
// its loss (and likelihoods) from the dequantized weights in float32.
nlohmann::json evaluate_checkpoint(const EvalOptions& options);

// The report as an aligned two-column text table (what `ember eval` prints).
std::string format_eval_table(const nlohmann::json& report);

}  // namespace ember::chat
