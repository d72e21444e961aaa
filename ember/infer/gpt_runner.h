// The inference path of a GPT: prefill and decode against per-sequence KV
// caches, with no autograd and no tensor ops (raw float32 loops over the
// model's weights), for any batch of sequences at different positions.
//
// Why a separate path: the training forward builds a graph of tensor ops sized
// for [B, T] blocks; decoding one token per sequence spends its time in
// matrix-vector products (memory bound: every weight is read once per step) and
// per-op overhead. Here each layer is a handful of tight loops:
//   rows = the new tokens of every sequence, packed [N, C]
//   ln_1 -> c_attn (GEMV kernel for N <= 8, oneDNN sgemm above) -> RoPE on q, k
//   -> k, v appended to each sequence's cache at its own positions
//   -> attention of each row over its own cache (causal by construction: a row at
//      position p sees cache rows 0..p) -> c_proj + residual -> ln_2 -> MLP.
// Logits are computed only for the rows asked for (the last of each sequence,
// or all for tests). Scratch buffers grow once and are reused, so steady-state
// decoding does not allocate.
//
// Weights come as RunnerWeights (runner_weights.h): each Linear weight is
// float32, int8 or int4 (weight-only quantization, quant.h), and the products
// go through infer/quant_kernels, so a quantized checkpoint runs on the same
// path. The runner shares ownership of the weights; built from a GPT it shares
// the model's tensors and reads them through pointers taken at construction,
// so the model must stay float32 on the CPU, and updates made in place (PPO)
// are seen by the next forward.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ember/infer/kv_cache.h"
#include "ember/infer/quant.h"
#include "ember/infer/runner_weights.h"
#include "ember/models/gpt.h"

namespace ember::infer {

// One sequence's share of a batched forward: n_tokens new ids appended at
// positions cache->length() .. cache->length() + n_tokens - 1.
struct SeqChunk {
  const int64_t* tokens = nullptr;
  int64_t n_tokens = 0;
  KVCache* cache = nullptr;
};

class GPTRunner {
 public:
  explicit GPTRunner(const models::GPT& model);
  explicit GPTRunner(std::shared_ptr<const RunnerWeights> weights);

  const models::GPTConfig& config() const { return cfg_; }
  KVCache new_cache(int64_t max_len = 0) const { return KVCache::for_config(cfg_, max_len); }

  // Runs every chunk through the model in one pass, appends their keys and
  // values to their caches (advancing their lengths), and writes logits:
  // all_logits false: [chunks.size(), vocab], the last token of each chunk;
  // all_logits true:  [sum of n_tokens, vocab], every token in chunk order.
  // Errors (nothing changed) on an empty chunk, an id outside the vocabulary,
  // a cache of another shape, or a chunk that would overflow its cache.
  void forward(const std::vector<SeqChunk>& chunks, std::vector<float>& logits, bool all_logits = false);

  // Convenience for one sequence: logits [n_tokens, vocab] of every new token.
  std::vector<float> forward(const std::vector<int64_t>& tokens, KVCache& cache);

  // Bytes of weights a decode step reads (every matrix with its scales and
  // biases, the embedding rows aside).
  int64_t weight_bytes() const { return weight_bytes_; }

 private:
  struct Layer {
    const float *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
    LinearWeight attn, proj, fc, fc2;
    const float *attn_b = nullptr, *proj_b = nullptr, *fc_b = nullptr, *fc2_b = nullptr;
  };
  void norm(const float* x, int64_t rows, const float* w, const float* b, float* out) const;
  void attend(int64_t layer, const std::vector<SeqChunk>& chunks, int64_t n_rows, int64_t max_len,
              bool last_rows_only);

  std::shared_ptr<const RunnerWeights> weights_;
  models::GPTConfig cfg_;
  std::vector<Layer> layers_;
  const float *wte_ = nullptr, *wpe_ = nullptr, *lnf_w_ = nullptr, *lnf_b_ = nullptr;
  LinearWeight head_;
  const float *rope_cos_ = nullptr, *rope_sin_ = nullptr;
  int64_t weight_bytes_ = 0;
  // Scratch, grown on demand (tile_: the quantized GEMM's dequantized block).
  std::vector<float> x_, h_, qkv_, att_, fc_, act_, scores_, tile_;
  std::vector<int64_t> row_pos_, row_seq_;
};

}  // namespace ember::infer
