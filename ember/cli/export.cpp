// `ember export`: writes a GPT checkpoint's forward pass (token ids -> logits)
// as a deployment file.
//
//   ember export --checkpoint runs/sft --out model.onnx [--format onnx] [--batch 1] [--seq-len T]
//
// --format onnx: an ONNX model (opset 17) traced through the graph compiler
// (models/gpt_onnx.h), runnable by onnxruntime; static shapes [batch, seq_len]
// (seq_len defaults to the model's block_size; causal attention lets shorter
// inputs be right-padded).
// --format emb: ember's saved graph (graph/saved_graph.h), run by `ember run`
// or the standalone `ember-run` (the runtime library without training code);
// input ids [1, seq_len].
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/graph/runtime.h"
#include "ember/graph/saved_graph.h"
#include "ember/models/gpt_onnx.h"
#include "ember/nn/module_io.h"
#include "ember/train/model_checkpoint.h"

namespace ember::cli {
namespace {

struct ExportOptions {
  std::string checkpoint, out, format = "onnx";
  int64_t batch = 1, seq_len = 0;
  bool json = false;
};

void run_export(const ExportOptions& o) {
  const char* op = "export";
  if (o.batch < 1) fail(op, "--batch must be >= 1, got ", o.batch);
  if (o.seq_len < 0) fail(op, "--seq-len must be >= 1, got ", o.seq_len);
  const train::ModelCheckpoint ckpt =
      train::open_model_checkpoint(o.checkpoint, {"pretrain", "sft", "dpo", "ppo"}, op, "--checkpoint");
  const int64_t T = o.seq_len > 0 ? o.seq_len : ckpt.config.block_size;
  if (T > ckpt.config.block_size)
    fail(op, "--seq-len ", T, " exceeds the model's block_size ", ckpt.config.block_size);
  const std::filesystem::path out(o.out);
  if (std::filesystem::is_directory(out)) fail(op, "--out ", o.out, " is a folder; give a file name such as model.onnx");

  models::GPTConfig cfg = ckpt.config;
  cfg.dropout = 0.0;
  models::GPT model(cfg);
  nn::load_module(model, ckpt.model_path);
  if (o.format == "emb") {
    if (o.batch != 1) fail(op, "--format emb exports batch 1 (ember run takes one sequence)");
    graph::Graph g = models::trace_gpt_forward(model, 1, T);
    nlohmann::json meta = {{"kind", "gpt-forward"}, {"config", cfg.to_json()}, {"seq_len", T},
                           {"checkpoint", ckpt.dir}};
    graph::save_graph(g, o.out, meta);
    std::cout << "exported " << ckpt.dir << " -> " << o.out << " (ember saved graph v" << graph::kSavedGraphVersion
              << ", " << g.nodes.size() << " nodes, " << std::filesystem::file_size(o.out) << " bytes)\n"
              << "run it: echo '[1, 2, 3]' | ember run " << o.out << "\n";
    return;
  }
  const graph::OnnxExportInfo info = models::export_gpt_onnx(model, o.out, o.batch, T);

  if (o.json) {
    nlohmann::json j = {{"format", o.format},   {"checkpoint", ckpt.dir},     {"out", o.out},
                        {"batch", o.batch},     {"seq_len", T},               {"vocab_size", cfg.vocab_size},
                        {"nodes", info.nodes},  {"initializers", info.initializers}, {"bytes", info.bytes}};
    std::cout << j.dump() << std::endl;
    return;
  }
  std::cout << "exported " << ckpt.dir << " -> " << o.out << " (onnx opset 17, " << info.nodes << " nodes, "
            << info.initializers << " initializers, " << info.bytes << " bytes)\n"
            << "input_ids int64 [" << o.batch << ", " << T << "] -> logits float32 [" << o.batch << ", " << T << ", "
            << cfg.vocab_size << "]\n";
}

}  // namespace

void register_run(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("run", "Run a saved graph (.emb): token ids as a JSON array on stdin -> last logits");
  cmd->add_option("file", *path, "A file from `ember export --format emb`")->required();
  cmd->callback([path] {
    const int rc = graph::run_saved_graph_main(*path);
    if (rc != 0) std::exit(rc);
  });
}

void register_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* cmd = app.add_subcommand("export", "Export a GPT checkpoint's forward pass (token ids -> logits): ONNX or .emb");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint folder (pretrain, sft, dpo, ppo) or its run folder")->required();
  cmd->add_option("--out", o->out, "Output file, e.g. model.onnx (written atomically)")->required();
  cmd->add_option("--format", o->format, "onnx (onnxruntime), or emb (ember's saved graph for `ember run`)")
      ->capture_default_str()
      ->check(CLI::IsMember({"onnx", "emb"}));
  cmd->add_option("--batch", o->batch, "Batch size of the exported graph (static)")->capture_default_str();
  cmd->add_option("--seq-len", o->seq_len, "Sequence length of the exported graph (static; default: block_size)");
  cmd->add_flag("--json", o->json, "Print one JSON object instead of the summary");
  cmd->callback([o] { run_export(*o); });
}

}  // namespace ember::cli
