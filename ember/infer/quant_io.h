// A checkpoint's model.safetensors as the runner reads it: float32 (what
// training writes) or weight-only quantized (what `ember quantize` writes).
//
// A quantized model.safetensors keeps the GPT's tensor names. Every tensor is
// float32 (F32) except the quantized Linear weights (runner_weights.h says which):
//   <name>          int8: I8 [out, in]; int4: U8 [out, ceil(in / 2)], two codes
//                   a byte, the even column in the low nibble, value = code - 8;
//                   f16: F16 [out, in] (IEEE binary16, the weights themselves)
//   <name>_scale    F32: int8 [out]; int4 [out, ceil(in / group_size)]; none for f16
// and its metadata says how to read them:
//   "quantization": "int8" | "int4" | "f16",  "quantization_group_size": "64" (int4),
//   "quantization_head": "int8" | "int4" | "f16" | "float32",  "format": "pt".
// With tied embeddings and a quantized head the file holds the float table
// transformer.wte.weight (the lookup) and the quantized lm_head.weight; with a
// float head lm_head.weight is left out (it is the table).
#pragma once

#include <memory>
#include <string>

#include "ember/infer/runner_weights.h"

namespace ember::infer {

// Writes the weights atomically (io/atomic_file.h) in the layout above; float
// weights give an ordinary float32 model file.
void save_runner_weights(const RunnerWeights& w, const std::string& path);

// Reads a float32 or quantized model.safetensors for a model of config `cfg`.
// Every error names the file and the tensor: a missing or unexpected tensor, a
// wrong dtype or shape (of a weight or of its scales), non-finite or negative
// scales, non-finite f16 weights, metadata that contradicts the tensors.
// The float Linear weights come packed for the GEMM (RunnerWeights::prepack)
// unless `prepack` is false (a caller that quantizes them next).
std::shared_ptr<RunnerWeights> load_runner_weights(const std::string& path, const models::GPTConfig& cfg,
                                                   bool prepack = true);

}  // namespace ember::infer
