// Collecting comparisons, InstructGPT-style, behind `ember label`: the policy
// (normally the SFT model) samples several replies to each prompt, and a
// labeller ranks them. Here the labeller is the curriculum's oracle
// (curriculum.h: the rubric's score), so the reward model learns from the
// policy's own kinds of mistakes (an answer about the wrong attribute, a
// repeated name in a sorted list, a wrong sum, "I don't know" about someone
// known) rather than only from the synthetic candidates of
// preferences_train.jsonl, which a fluent policy rarely produces.
//
// For each prompt (which must carry meta["grade"], and may carry
// meta["reference"], the ideal reply): the reference and `samples` replies
// sampled at `temperature` (seed + index per request, so the same options give
// the same file) are graded; identical texts are merged; one reply is kept per
// distinct score (the reference first, then the earliest sample), best first.
// A prompt whose replies all score alike carries no comparison and is left
// out. The ranked lists are written as preference records
// ({"prompt", "responses"}) after the records of the `include` files, copied
// as they are, so one file feeds the reward model and DPO. A list carries its
// prompt's kind and labels "reference", "sample_correct" or "sample_wrong" (as
// the labeller grades it), for the reward model's breakdown of its accuracy.
// With `every_pair`, each further pair of distinct replies that grade
// differently follows its list as a two-reply record.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ember::chat {

struct LabelOptions {
  std::string policy;                 // GPT checkpoint (sft, dpo, ppo or pretrain) or run folder
  std::string prompts;                // prompts JSONL with meta "grade" (and "reference")
  std::string out;                    // preferences JSONL written (atomically)
  std::vector<std::string> include;   // preference files whose records come first, unchanged
  int64_t samples = 4;                // sampled replies per prompt
  double temperature = 1.0;
  int64_t max_new_tokens = 32;
  int64_t limit = 0;                  // first N prompts only (0: all)
  // false: the prompts' reference replies are left out, so each list compares
  // the policy's own replies only (what a reward model is judged on when it
  // must choose among a policy's samples, as PPO asks of it).
  bool with_reference = true;
  // true: besides each prompt's ranked list, a two-reply record for every
  // other pair of distinct replies the labeller grades differently (another
  // right sample against each wrong one, the best against every other wrong
  // one...). The ranked list keeps one reply per score, so without these the
  // comparisons hold almost no pair of the policy's own right and wrong
  // replies, the choice PPO asks of a reward model.
  bool every_pair = false;
  // true: write an empty file when no prompt yields a comparison (for judging;
  // a file to train on must not be empty, which is an error otherwise).
  bool allow_empty = false;
  uint64_t seed = 1;
  int threads = 0;
  bool quiet = false;
};

struct LabelResult {
  int64_t prompts = 0;        // prompts labelled
  int64_t samples = 0;        // replies sampled
  int64_t lists = 0;          // ranked lists written from the samples (prompts with a comparison)
  int64_t pairs = 0;          // pairs in those lists (and in the every_pair records)
  int64_t extra_pairs = 0;    // two-reply records written by every_pair
  int64_t included = 0;       // records copied from `include`
  double sample_accuracy = 0; // fraction of sampled replies the labeller grades correct
  double sample_score = 0;    // their mean rubric score
  nlohmann::json to_json() const;
};

LabelResult label_policy_samples(const LabelOptions& options);

// One prompt's ranked list: `reference` (may be null) and `samples` graded
// with `key` (a prompt's meta["grade"]); one reply per distinct score (the
// first in that order), best first. Fewer than two replies when all score alike.
std::vector<std::string> rank_by_grade(const nlohmann::json& key, const std::string* reference,
                                       const std::vector<std::string>& samples);

// The pairs (better, worse) of distinct replies among `reference` (may be
// null) and `samples` that grade differently under `key` and are not both in
// `ranked` (rank_by_grade's list, whose pairs it already holds): in the order
// of first appearance, the reference first.
std::vector<std::pair<std::string, std::string>> further_pairs(const nlohmann::json& key, const std::string* reference,
                                                               const std::vector<std::string>& samples,
                                                               const std::vector<std::string>& ranked);

}  // namespace ember::chat
