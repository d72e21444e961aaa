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

// Every non-GPT-2 feature at once: RMSNorm, RoPE, SwiGLU, grouped-query attention, no bias, untied.
inline GPTConfig modern() {
  GPTConfig c = gpt2_style();
  c.norm = NormKind::rmsnorm, c.position = PositionKind::rope, c.mlp = MlpKind::swiglu;
  c.n_kv_head = 2, c.bias = false, c.tied_embeddings = false;
  return c;
}

}  // namespace ember::models::test_configs
