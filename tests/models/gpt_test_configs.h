// Small GPT configurations shared by the model and compiler tests.
#pragma once

#include "ember/models/gpt_config.h"

namespace ember::models::test_configs {

// GPT-2 style, small enough for exhaustive checks.
inline GPTConfig gpt2_style() {
  GPTConfig c;
  c.n_layer = 2, c.n_head = 4, c.n_kv_head = 4, c.n_embd = 32, c.vocab_size = 50, c.block_size = 16;
  return c;
}

// The non-GPT-2 architecture switches on any sizes: RMSNorm, RoPE, SwiGLU, no
// bias, untied head (grouped-query attention is the caller's n_kv_head).
inline GPTConfig with_modern_features(GPTConfig c) {
  c.norm = NormKind::rmsnorm, c.position = PositionKind::rope, c.mlp = MlpKind::swiglu;
  c.bias = false, c.tied_embeddings = false;
  return c;
}

// Every non-GPT-2 feature at once: RMSNorm, RoPE, SwiGLU, grouped-query attention, no bias, untied.
inline GPTConfig modern() {
  GPTConfig c = with_modern_features(gpt2_style());
  c.n_kv_head = 2;
  return c;
}

}  // namespace ember::models::test_configs
