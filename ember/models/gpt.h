// GPT: a decoder-only transformer covering GPT-2 and its usual modern variants
// (RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases, untied
// embeddings), built from ember's nn modules.
//
// Parameter names follow Hugging Face GPT-2 wherever a layer has a counterpart,
// so weights move both ways (models/gpt2_hf.h):
//   transformer.wte.weight            [vocab, C]
//   transformer.wpe.weight            [block_size, C]          (learned positions only)
//   transformer.h.{i}.ln_1.weight/.bias
//   transformer.h.{i}.attn.c_attn.weight/.bias   [(H + 2 Hkv) D, C]  rows q, k, v
//   transformer.h.{i}.attn.c_proj.weight/.bias   [C, C]
//   transformer.h.{i}.ln_2.weight/.bias
//   transformer.h.{i}.mlp.c_fc.weight/.bias      [4C, C] (swiglu: [2 hidden, C], gate rows first)
//   transformer.h.{i}.mlp.c_proj.weight/.bias    [C, hidden]
//   transformer.ln_f.weight/.bias
//   lm_head.weight                               [vocab, C]  (the same tensor as wte when tied)
// Linear weights are [out, in] (PyTorch's nn.Linear); GPT-2's Conv1D files hold
// [in, out], which the importer and exporter transpose.
#pragma once

#include <memory>

#include "ember/core/random.h"
#include "ember/models/gpt_config.h"
#include "ember/nn/attention.h"
#include "ember/nn/container.h"
#include "ember/nn/dropout.h"
#include "ember/nn/embedding.h"
#include "ember/nn/mlp.h"
#include "ember/nn/rope.h"

namespace ember::models {

// One pre-norm transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x)).
class Block : public nn::Module {
 public:
  Block(const GPTConfig& cfg, Generator* gen);
  // x [B, T, C] holding positions pos_offset .. pos_offset+T-1; rope is null for
  // learned positions. (A KV cache slots in at attention(): the new k and v are
  // appended to the cached ones before scaled_dot_product_attention, whose
  // causal mask aligns the last query with the last key.)
  Tensor forward(const Tensor& x, const nn::RotaryEmbedding* rope, int64_t pos_offset);
  Tensor attention(const Tensor& x, const nn::RotaryEmbedding* rope, int64_t pos_offset);
  std::string type_name() const override { return "Block"; }

  std::shared_ptr<nn::UnaryModule> ln_1, ln_2;  // LayerNorm or RMSNorm
  std::shared_ptr<nn::CausalSelfAttention> attn;
  std::shared_ptr<nn::MLP> mlp;
};

// The trunk, under the name "transformer" as in Hugging Face's GPT2LMHeadModel.
class Transformer : public nn::Module {
 public:
  Transformer(const GPTConfig& cfg, Generator* gen);
  std::string type_name() const override { return "Transformer"; }

  std::shared_ptr<nn::Embedding> wte, wpe;  // wpe null with RoPE
  std::shared_ptr<nn::Dropout> drop;
  std::shared_ptr<nn::ModuleList> h;
  std::shared_ptr<nn::UnaryModule> ln_f;
  std::shared_ptr<nn::RotaryEmbedding> rope;  // null with learned positions; registered as "rope" (no state)
};

// Holds lm_head.weight: its own [vocab, C] parameter, or wte's tensor when tied.
class LMHead : public nn::Module {
 public:
  explicit LMHead(const Tensor& w) { weight = register_parameter("weight", w); }
  std::string type_name() const override { return "LMHead"; }
  Tensor weight;
};

class GPT : public nn::Module {
 public:
  // GPT-2 initialisation (as nanoGPT): every Linear and Embedding weight
  // N(0, 0.02), the residual projections (attn.c_proj, mlp.c_proj) N(0,
  // 0.02/sqrt(2 n_layer)), biases zero, norm weights one. Validates cfg.
  explicit GPT(GPTConfig cfg, Generator* gen = nullptr);

  // idx int64 [B, T] -> logits [B, T, vocab] (float32 for a float32 model).
  // Errors when pos_offset + T > block_size or an id is outside [0, vocab).
  Tensor forward(const Tensor& idx, int64_t pos_offset = 0);
  // The final hidden states, after ln_f: [B, T, C].
  Tensor hidden_states(const Tensor& idx, int64_t pos_offset = 0);
  // The last position's logits [B, 1, vocab]: what a prefill needs for the
  // next token. Eagerly every position still runs through every block; a
  // compiled graph of it computes the last block on the last position only
  // (graph slice sinking).
  Tensor last_logits(const Tensor& idx, int64_t pos_offset = 0);
  // Mean cross-entropy of next-token targets [B, T] (entries equal to
  // ignore_index are skipped), through the fused cross_entropy op.
  Tensor loss(const Tensor& idx, const Tensor& targets, int64_t ignore_index = -1);

  const GPTConfig& config() const { return cfg_; }
  // Training FLOPs per token at sequence length seq_len (default block_size),
  // the nanoGPT / PaLM (appendix B) accounting used for MFU:
  //   6 * N + 12 * n_layer * n_embd * seq_len
  // where N counts the parameters that take part in per-token matmuls: all of
  // them except the position table (a lookup) and, when untied, the token table
  // (a lookup; the untied lm_head is counted). 6N = forward 2N + backward 4N; the
  // second term is the attention scores and weighted sum (QK^T and AV, forward
  // and backward) without discounting the causal mask.
  int64_t flops_per_token() const { return flops_per_token(cfg_.block_size); }
  int64_t flops_per_token(int64_t seq_len) const;
  // Parameters without the position table and, when untied, the token table.
  int64_t num_matmul_parameters() const;

  std::string type_name() const override { return "GPT"; }

  std::shared_ptr<Transformer> transformer;
  std::shared_ptr<LMHead> lm_head;

 private:
  void init_weights(Generator* gen);
  GPTConfig cfg_;
};

}  // namespace ember::models
