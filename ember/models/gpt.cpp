// GPT model: blocks, trunk, initialisation, forward and loss.
#include "ember/models/gpt.h"
#include "ember/ops/trace_hook.h"

#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/nn/copy.h"
#include "ember/nn/init.h"
#include "ember/nn/norm.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/linalg.h"
#include "ember/ops/nn_ops.h"
#include "ember/ops/reduce.h"
#include "ember/ops/shape_ops.h"

namespace ember::models {

namespace {

std::shared_ptr<nn::UnaryModule> make_norm(const GPTConfig& cfg) {
  if (cfg.norm == NormKind::rmsnorm) return std::make_shared<nn::RMSNorm>(cfg.n_embd, cfg.norm_eps);
  return std::make_shared<nn::LayerNorm>(cfg.n_embd, cfg.norm_eps, /*affine=*/true, /*bias=*/cfg.bias);
}

// gelu here is GPT-2's tanh approximation (Hugging Face "gelu_new").
nn::Activation mlp_activation(MlpKind k) {
  return k == MlpKind::swiglu ? nn::Activation::swiglu : nn::Activation::gelu_tanh;
}

}  // namespace

Block::Block(const GPTConfig& cfg, Generator* gen) {
  ln_1 = register_module("ln_1", make_norm(cfg));
  attn = register_module("attn", std::make_shared<nn::CausalSelfAttention>(cfg.n_embd, cfg.n_head, cfg.n_kv_head,
                                                                           cfg.bias, cfg.dropout, gen));
  ln_2 = register_module("ln_2", make_norm(cfg));
  mlp = register_module("mlp", std::make_shared<nn::MLP>(cfg.n_embd, cfg.mlp_hidden(), mlp_activation(cfg.mlp),
                                                          cfg.bias, gen));
}

Tensor Block::attention(const Tensor& x, const nn::RotaryEmbedding* rope, int64_t pos_offset) {
  // nn::CausalSelfAttention::forward with positions: without RoPE the same
  // fused_qkv_attention; with it, c_attn split into heads, RoPE on q and k,
  // then the fused attention op.
  const int64_t B = x.shape(0), T = x.shape(1), D = attn->head_dim;
  Tensor qkv = attn->c_attn->forward(x);  // (B, T, (H + 2 Hkv) D)
  if (!rope)  // n_head * D wide, not n_embd: under tensor parallelism a rank holds only its heads
    return attn->resid_dropout->forward(
        attn->c_proj->forward(fused_qkv_attention(qkv, attn->n_head, attn->n_kv_head, /*causal=*/true)));
  auto heads = [&](int64_t first, int64_t count) {  // -> (B, count, T, D)
    Tensor part = narrow(qkv, 2, first * D, count * D);
    return transpose(reshape(part, {B, T, count, D}), 1, 2);
  };
  Tensor q = rope->forward(heads(0, attn->n_head), pos_offset);
  Tensor k = rope->forward(heads(attn->n_head, attn->n_kv_head), pos_offset);
  Tensor v = heads(attn->n_head + attn->n_kv_head, attn->n_kv_head);
  Tensor y = scaled_dot_product_attention(q, k, v, /*causal=*/true);  // (B, H, T, D)
  // n_head * D, not n_embd: under tensor parallelism a rank holds only its heads.
  y = reshape(transpose(y, 1, 2), {B, T, attn->n_head * D});
  return attn->resid_dropout->forward(attn->c_proj->forward(y));
}

Tensor Block::forward(const Tensor& x, const nn::RotaryEmbedding* rope, int64_t pos_offset) {
  Tensor h = x + attention(ln_1->forward(x), rope, pos_offset);
  // Residual dropout on the MLP branch; the attention branch has it inside attn.
  Tensor m = mlp->forward(ln_2->forward(h));
  return h + attn->resid_dropout->forward(m);
}

Transformer::Transformer(const GPTConfig& cfg, Generator* gen) {
  wte = register_module("wte", std::make_shared<nn::Embedding>(cfg.vocab_size, cfg.n_embd, gen));
  if (cfg.position == PositionKind::learned)
    wpe = register_module("wpe", std::make_shared<nn::Embedding>(cfg.block_size, cfg.n_embd, gen));
  drop = register_module("drop", std::make_shared<nn::Dropout>(cfg.dropout));
  h = register_module("h", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < cfg.n_layer; ++i) h->push_back(std::make_shared<Block>(cfg, gen));
  ln_f = register_module("ln_f", make_norm(cfg));
  if (cfg.position == PositionKind::rope)
    rope = register_module("rope", std::make_shared<nn::RotaryEmbedding>(cfg.head_dim(), cfg.block_size,
                                                                           cfg.rope_theta));
}

GPT::GPT(GPTConfig cfg, Generator* gen) : cfg_(std::move(cfg)) {
  cfg_.validate();
  transformer = register_module("transformer", std::make_shared<Transformer>(cfg_, gen));
  Tensor head = cfg_.tied_embeddings ? transformer->wte->weight : Tensor::empty({cfg_.vocab_size, cfg_.n_embd});
  lm_head = register_module("lm_head", std::make_shared<LMHead>(head));
  init_weights(gen);
}

void GPT::init_weights(Generator* gen) {
  NoGradGuard no_grad;
  const double std = 0.02, resid_std = 0.02 / std::sqrt(2.0 * double(cfg_.n_layer));
  for (const auto& [name, p] : named_parameters()) {
    auto ends_with = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends_with(".bias")) {
      nn::init::zeros_(p);
    } else if (ends_with("ln_1.weight") || ends_with("ln_2.weight") || ends_with("ln_f.weight")) {
      nn::init::ones_(p);
    } else if (ends_with("c_proj.weight")) {
      nn::init::normal_(p, 0.0, resid_std, gen);
    } else if (ends_with("wte.weight") || ends_with("wpe.weight")) {
      // nn::Embedding starts N(0, 1): scaling gives N(0, 0.02) without drawing
      // again (a third of gpt2's parameters; drawing normals dominates init time).
      nn::copy_(p, p * std);
    } else {
      nn::init::normal_(p, 0.0, std, gen);  // c_attn, c_fc, untied lm_head
    }
  }
}

Tensor GPT::hidden_states(const Tensor& idx, int64_t pos_offset) {
  const char* op = "GPT";
  EMBER_CHECK(idx.defined() && idx.ndim() == 2, op, "expects token ids [B, T], got ",
              idx.defined() ? shape_str(idx.shape()) : std::string("an undefined tensor"));
  EMBER_CHECK(idx.dtype() == DType::i64, op, "token ids must be int64, got ", dtype_name(idx.dtype()));
  const int64_t T = idx.shape(1);
  EMBER_CHECK(T > 0, op, "empty sequence (T = 0)");
  EMBER_CHECK(pos_offset >= 0 && pos_offset + T <= cfg_.block_size, op, "sequence of ", T,
              " tokens at position offset ", pos_offset, " exceeds block_size ", cfg_.block_size);
  if (!tracing_active()) {
    // One pass over B*T ids, for a message better than the embedding kernel's
    // (which still checks every id, also in a compiled graph, where values
    // cannot be read while tracing).
    NoGradGuard no_grad;
    int64_t lo = min(idx).item<int64_t>(), hi = max(idx).item<int64_t>();
    EMBER_CHECK(lo >= 0 && hi < cfg_.vocab_size, op, "token ids must be in [0, ", cfg_.vocab_size, "), got values in [",
                lo, ", ", hi, "]");
  }
  Tensor x = transformer->wte->forward(idx);  // (B, T, C)
  if (transformer->wpe) {
    Tensor pos = arange(pos_offset, pos_offset + T, 1, DType::i64, idx.device());
    x = x + transformer->wpe->forward(pos);  // (T, C) broadcast over B
  }
  x = transformer->drop->forward(x);
  const nn::RotaryEmbedding* rope = transformer->rope.get();
  for (const auto& m : *transformer->h) x = static_cast<Block&>(*m).forward(x, rope, pos_offset);
  return transformer->ln_f->forward(x);
}

Tensor GPT::forward(const Tensor& idx, int64_t pos_offset) {
  return linear(hidden_states(idx, pos_offset), lm_head->weight);  // (B, T, vocab)
}

Tensor GPT::last_logits(const Tensor& idx, int64_t pos_offset) {
  Tensor h = hidden_states(idx, pos_offset);
  const int64_t T = h.shape(1);
  return linear(slice(h, 1, T - 1, T), lm_head->weight);  // (B, 1, vocab)
}

Tensor GPT::loss(const Tensor& idx, const Tensor& targets, int64_t ignore_index) {
  EMBER_CHECK(targets.defined() && targets.shape() == idx.shape(), "GPT", "targets must have the shape of the ids ",
              shape_str(idx.shape()), ", got ", targets.defined() ? shape_str(targets.shape()) : std::string("none"));
  EMBER_CHECK(targets.dtype() == DType::i64, "GPT", "targets must be int64, got ", dtype_name(targets.dtype()));
  // The head and the loss in one: no [B, T, vocab] logits (linear_cross_entropy).
  return linear_cross_entropy(hidden_states(idx), lm_head->weight, targets, ignore_index, Reduction::mean);
}

int64_t GPT::num_matmul_parameters() const {
  int64_t n = num_parameters();
  if (transformer->wpe) n -= transformer->wpe->weight.numel();
  if (!cfg_.tied_embeddings) n -= transformer->wte->weight.numel();
  return n;
}

int64_t GPT::flops_per_token(int64_t seq_len) const {
  EMBER_CHECK(seq_len > 0, "GPT", "flops_per_token: seq_len must be positive, got ", seq_len);
  return 6 * num_matmul_parameters() + 12 * cfg_.n_layer * cfg_.n_embd * seq_len;
}

}  // namespace ember::models
