// The ember half of the ONNX export conformance test (driven by onnx_export.py):
//   onnx_export_tool --dir DIR
// For two small random GPTs, GPT-2 style (layernorm, learned positions,
// gelu_tanh, biases, tied embeddings) and modern (rmsnorm, RoPE, SwiGLU,
// grouped-query attention, no biases, untied), every parameter perturbed so
// biases and norm gains are not trivial, writes under DIR/<variant>/:
//   api.onnx           models::export_gpt_onnx at batch 2, seq_len 24
//   run/               a checkpoint (byte tokenizer) for `ember export`
//   io.safetensors     ids [2, 24] and ember's logits for them; ids_cli [1, 32]
//                      (block_size) and logits_cli; logits_short: ember's logits
//                      for ids_cli's first 20 tokens alone (right-padding check)
// Python runs the ONNX files in onnxruntime and compares; this tool only computes.
#include <filesystem>
#include <iostream>

#include "ember/ember.h"
#include "ember/models/gpt_onnx.h"
#include "ember/nn/copy.h"
#include "ember/train/checkpoint.h"
#include "serve/scripted_model.h"

using namespace ember;
using namespace ember::models;
namespace fs = std::filesystem;

namespace {

GPTConfig variant_config(bool modern) {
  GPTConfig c;
  c.n_layer = 2, c.n_head = 4, c.n_kv_head = 4, c.n_embd = 64, c.vocab_size = 259, c.block_size = 32;
  c.dropout = 0.0;
  if (modern) {
    c.norm = NormKind::rmsnorm, c.position = PositionKind::rope, c.mlp = MlpKind::swiglu;
    c.n_kv_head = 2, c.bias = false, c.tied_embeddings = false;
  }
  return c;
}

void write_variant(const fs::path& dir, bool modern, uint64_t seed) {
  const GPTConfig cfg = variant_config(modern);
  Generator gen(seed);
  GPT model(cfg, &gen);
  model.eval();
  {
    NoGradGuard no_grad;
    for (const auto& [name, p] : model.named_parameters())
      nn::copy_(p, p + normal(p.shape(), 0.0, 0.02, p.dtype(), Device::cpu(), &gen));
  }
  fs::create_directories(dir);
  const graph::OnnxExportInfo info = export_gpt_onnx(model, (dir / "api.onnx").string(), 2, 24);

  const Tokenizer tok = serve::testing::byte_tokenizer();
  tok.save((dir / "tokenizer").string());
  train::CheckpointSave what{&model, nullptr, {{"kind", "pretrain"}, {"step", 0}, {"config", cfg.to_json()}},
                             {{(dir / "tokenizer").string(), "tokenizer"}}};
  train::save_checkpoint((dir / "run").string(), 0, what);

  NoGradGuard no_grad;
  Tensor ids = randint(0, cfg.vocab_size, {2, 24}, Device::cpu(), &gen);
  Tensor ids_cli = randint(0, cfg.vocab_size, {1, cfg.block_size}, Device::cpu(), &gen);
  Tensor ids_short = contiguous(slice(ids_cli, 1, 0, 20));
  save_safetensors((dir / "io.safetensors").string(), {{"ids", ids},
                                                      {"logits", model.forward(ids)},
                                                      {"ids_cli", ids_cli},
                                                      {"logits_cli", model.forward(ids_cli)},
                                                      {"logits_short", model.forward(ids_short)}});
  std::cout << "ember: " << dir.filename().string() << ": " << model.num_parameters() << " parameters, "
            << info.nodes << " ONNX nodes, " << info.bytes << " bytes\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc != 3 || std::string(argv[1]) != "--dir") {
      std::cerr << "usage: onnx_export_tool --dir DIR\n";
      return 2;
    }
    const fs::path dir = argv[2];
    write_variant(dir / "gpt2_style", false, 1234);
    write_variant(dir / "modern", true, 5678);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
