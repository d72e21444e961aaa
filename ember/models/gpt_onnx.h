// ONNX export of a GPT's forward pass, token ids -> logits, through the graph
// compiler: GPT::forward is traced (eval mode, no gradients) at one batch size
// and sequence length, simplified by ember's passes (fusion off: ONNX runtimes
// fuse for themselves), and written by graph::export_onnx (graph/onnx_export.h).
//
// The ONNX model has one input "input_ids" int64 [batch, seq_len] and one output
// "logits" float32 [batch, seq_len, vocab_size]; its initializers carry the
// parameter names of models/gpt.h (transformer.h.0.attn.c_attn.weight, ...; a
// tied lm_head is transformer.wte.weight). Shapes are static (see
// docs/COMPILER.md): attention is causal, so one export at seq_len = block_size
// serves shorter prompts right-padded with any token, reading the logits at the
// prompt's last position.
#pragma once

#include <cstdint>
#include <string>

#include "ember/graph/ir.h"
#include "ember/graph/onnx_export.h"
#include "ember/models/gpt.h"

namespace ember::models {

// The optimised inference graph of model.forward(ids) for ids [batch, seq_len]
// (seq_len 0: block_size), captures named after the parameters. The model's
// train/eval mode is restored afterwards.
graph::Graph trace_gpt_forward(GPT& model, int64_t batch, int64_t seq_len);

// The options export_gpt_onnx uses: input/output names, graph name, and the
// config, batch and seq_len as metadata (keys "ember.config", "ember.batch",
// "ember.seq_len").
graph::OnnxExportOptions gpt_onnx_options(const GPTConfig& cfg, int64_t batch, int64_t seq_len);

// Traces and writes `path` (atomically). Errors name the problem: seq_len over
// block_size, a non-positive batch, a primitive without an ONNX mapping.
graph::OnnxExportInfo export_gpt_onnx(GPT& model, const std::string& path, int64_t batch, int64_t seq_len);

}  // namespace ember::models
