// What the reward model (chat/reward.h) and DPO (chat/dpo.h) share: ranked
// preference lists as token rows, right-padded batches, the pairs of a ranked
// list, and the two pairwise losses.
//
// A response row is exactly what the policy sees and produces:
//   render_prompt(prompt) + reply tokens + <|im_end|>
// (the chat template's render() of prompt + assistant turn, without the
// newline that follows <|im_end|>), so the reward model scores the same tokens
// PPO's rollouts end with, and DPO's log-probabilities cover the same tokens
// generation emits. Too-long rows lose prompt tokens from the left (the end of
// the prompt, nearest the reply, matters most); a response that cannot fit
// with at least one prompt token before it is an error.
//
// Pairs: a list ranked best first with K responses gives every pair (i, j),
// i < j, i better: K(K-1)/2 pairs (InstructGPT). Each pair weighs
// 1 / (lists * pairs of its list), so a batch's loss is the mean over lists of
// the mean over each list's pairs; with chosen/rejected data (K = 2) that is
// the plain mean over pairs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/chat/jsonl.h"
#include "ember/chat/template.h"
#include "ember/core/tensor.h"
#include "ember/models/gpt.h"

namespace ember::chat {

// One preference record as token rows, best response first.
struct RankedRows {
  std::vector<std::vector<int64_t>> rows;  // prompt + response + <|im_end|>, one per response
  std::vector<int64_t> response_start;     // rows[i][response_start[i]] is response i's first token
  int64_t prompt_tokens_cut = 0;           // prompt tokens dropped (over all rows) to fit max_len
  std::string kind;                        // the record's kind of question ("" when not given)
  std::vector<std::string> labels;         // the record's response labels (empty when not given)
};

// Pairwise accuracy broken down by what was compared: by the lists' kind of
// question ("fact", "arith", ...) and by the labels of the pair ("ideal>wrong"),
// for lists that carry them (jsonl.h). Every key any list can give is present
// from the start (for_lists), so ranks that evaluated different lists hold the
// same keys and their tallies add up element by element (flat / set_flat).
struct PairBreakdown {
  struct Tally {
    double correct = 0;  // pairs ordered right (a tie counts one half)
    int64_t pairs = 0;
  };
  std::map<std::string, Tally> by_kind, by_labels;

  static PairBreakdown for_lists(const std::vector<RankedRows>& lists);
  // One pair of `list` (better and worse index its responses), `correct` in [0, 1].
  void add(const RankedRows& list, size_t better, size_t worse, double correct);
  std::vector<double> flat() const;             // every tally, in key order
  void set_flat(const std::vector<double>& v);  // the inverse (after summing over ranks)
  // {"by_kind": {kind: {"pairs", "accuracy"}}, "by_labels": {...}}, leaving out
  // keys with no pair; empty object when no list had a kind or labels.
  nlohmann::json to_json() const;
};

// `where` (e.g. "prefs.jsonl record 12") prefixes errors. Errors when the
// record has fewer than two responses or a response does not fit in max_len.
RankedRows render_ranked(const ChatTemplate& tmpl, const PreferenceRecord& record, int64_t max_len,
                         const std::string& where);
// Every record of `file` (used in error messages); `cut` counts records whose
// prompt was shortened.
std::vector<RankedRows> render_ranked_all(const ChatTemplate& tmpl, const std::vector<PreferenceRecord>& records,
                                          int64_t max_len, const std::string& file, int64_t* cut = nullptr);

// rows[from, to) as a model with a context of `block` tokens reads them: a
// longer row keeps its last `block` tokens (a copy kept in `cut`, which is
// cleared first and must outlive the result), the others are used in place.
// Errors name `op` when a row is empty.
std::vector<const std::vector<int64_t>*> rows_in_context(const std::vector<std::vector<int64_t>>& rows, size_t from,
                                                         size_t to, size_t block,
                                                         std::vector<std::vector<int64_t>>& cut, const char* op);
// Rows right-padded with pad_id into idx int64 [B, width] (width: the longest
// row); last[b] = rows[b].size() - 1, the index of each row's final real token.
struct PaddedRows {
  Tensor idx, last;
  int64_t width = 0;
};
PaddedRows pad_right(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id);

// A per-row quantity (a score, a log-probability) of rows of very different
// lengths, computed in up to `max_groups` right-padded forward passes over
// rows of similar length instead of one padded to the longest row (a ranked
// list often holds one rambling response several times longer than the
// rest). The groups (indices into rows, each sorted by length) minimise the
// padded tokens, an extra group taken only when it saves over 10%; fn(group) returns that group's values [group.size()], and the
// result [rows.size()] is in rows' order, differentiable through fn.
Tensor per_row_grouped(const std::vector<const std::vector<int64_t>*>& rows,
                       const std::function<Tensor(const std::vector<size_t>& group)>& fn, int max_groups = 3);
// The grouping per_row_grouped uses.
std::vector<std::vector<size_t>> length_groups(const std::vector<const std::vector<int64_t>*>& rows, int max_groups);

// The pairs of consecutive ranked lists whose responses are concatenated
// (list sizes `list_sizes`, each >= 2): better/worse index that concatenation,
// weight as described above (sums to 1).
struct RankedPairs {
  Tensor better, worse;  // int64 [P]
  Tensor weight;         // [P], dtype of the scores it will weigh
  int64_t count = 0;
};
RankedPairs ranked_pairs(const std::vector<int64_t>& list_sizes, DType dtype = DType::f32);

// A pair's credit in pairwise accuracy from its margin (better minus worse):
// 1 ordered right, 1/2 a tie (a zero-headed reward model, DPO at step 0), 0 wrong.
inline double pair_credit(double margin) { return margin > 0 ? 1.0 : margin == 0 ? 0.5 : 0.0; }

// -log sigmoid(x) elementwise, stable for any x and with the exact gradient
// sigmoid(x) - 1 everywhere (x = 0 included: a reward model with a zero head
// and DPO at step 0 both start there).
Tensor neg_log_sigmoid(const Tensor& x);

// Bradley-Terry: sum over pairs of weight * -log sigmoid(s_better - s_worse);
// scores [N] for the concatenated lists.
Tensor bradley_terry_loss(const Tensor& scores, const RankedPairs& pairs);

// DPO's implicit reward of each response: beta * (log pi(y|x) - log pi_ref(y|x)), [N].
Tensor dpo_implicit_rewards(const Tensor& policy_logps, const Tensor& ref_logps, double beta);
// DPO: sum over pairs of weight * -log sigmoid(r_better - r_worse), with r the
// implicit rewards above; inputs [N] for the concatenated lists.
Tensor dpo_loss(const Tensor& policy_logps, const Tensor& ref_logps, const RankedPairs& pairs, double beta);

// Sum of log p(token) over each row's response tokens (response_start[b] ..
// end of row, <|im_end|> included) under `logits` [B, width - 1, V] computed
// from rows padded by pad_right (position p predicts token p + 1). [B].
Tensor response_logps(const Tensor& logits, const std::vector<const std::vector<int64_t>*>& rows,
                      const std::vector<int64_t>& response_start);
// Its terms: -log p of each response token at the position that predicts it,
// [B, width - 1], 0 at every other position.
Tensor response_token_nll(const Tensor& logits, const std::vector<const std::vector<int64_t>*>& rows,
                          const std::vector<int64_t>& response_start);

// The same for any rows: the sum of log p over rows[i][starts[i]..end), or
// with `lowest` the lowest log p of those tokens, [rows.size()]; each row
// forwarded once (length groups). Rows must fit the model's block_size.
Tensor rows_logps(models::GPT& model, const std::vector<const std::vector<int64_t>*>& rows,
                  const std::vector<int64_t>& starts, int64_t pad_id, bool lowest = false);
// Response log-probabilities [N] of lists `which` of `lists` (their responses
// concatenated, best first) under `model`, each response forwarded once (in
// length groups, per_row_grouped); `sizes` (when given) gets the list sizes.
// DPO's policy and reference terms, and `ember eval`'s likelihood ranking.
Tensor lists_logps(models::GPT& model, const std::vector<RankedRows>& lists, const std::vector<size_t>& which,
                   int64_t pad_id, std::vector<int64_t>* sizes);

// A permutation of [0, n) from (seed, epoch): splitmix64-driven Fisher-Yates,
// the same on every machine.
std::vector<size_t> shuffled_order(size_t n, uint64_t seed, uint64_t epoch);

// The training lists' order in the reward model and DPO: epoch e visits the n
// lists in shuffled_order(n, seed, e); a batch takes the next lists, running
// on into the next epoch. The position (epochs begun, cursor in the current
// one) is what a checkpoint saves as trainer.json "data", so a resumed run
// draws the batches the uninterrupted one would have.
class PreferenceBatches {
 public:
  PreferenceBatches(size_t n, uint64_t seed) : n_(n), seed_(seed) {}
  std::vector<size_t> next(size_t batch);  // min(batch, n) lists
  nlohmann::json position() const { return {{"epoch", epoch_}, {"cursor", cursor_}}; }
  void restore(const nlohmann::json& position);

 private:
  size_t n_;
  uint64_t seed_, epoch_ = 0;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
};

}  // namespace ember::chat
