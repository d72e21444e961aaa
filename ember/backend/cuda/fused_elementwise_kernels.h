// The CUDA kernel of graph::FusedElementwisePrim (graph/fused_elementwise.h):
// a short program of float32 unary and binary ops over registers, run per
// element, so a chain of k ops reads its inputs and writes its outputs once
// instead of k times. The program travels as one kernel argument (a few
// hundred bytes), so its size is bounded; the fusion pass keeps groups within
// graph::kMaxFusedOps ops, which these bounds cover.
#pragma once

#include <cstdint>

namespace ember::cuda {

constexpr int kFusedMaxSteps = 32;                   // graph::kMaxFusedOps
constexpr int kFusedMaxInputs = kFusedMaxSteps + 1;  // a chain takes at most one new input per op, two at its start
constexpr int kFusedMaxOutputs = kFusedMaxSteps;

struct FusedStep {
  uint8_t binary = 0;
  uint8_t op = 0;  // a UnaryOp or BinaryOp (arithmetic) value
  int16_t a = 0, b = 0;
};

struct FusedProgram {
  int32_t n_inputs = 0, n_steps = 0, n_outputs = 0;
  const float* in[kFusedMaxInputs] = {};
  uint8_t in_scalar[kFusedMaxInputs] = {};  // 1: one element read at every index
  FusedStep steps[kFusedMaxSteps] = {};
  float* out[kFusedMaxOutputs] = {};
  int16_t out_reg[kFusedMaxOutputs] = {};
};

// Runs the program at every index in [0, n) on the current stream; inputs are
// contiguous device arrays of n floats or single floats, outputs n floats.
void fused_elementwise(const FusedProgram& program, int64_t n);

}  // namespace ember::cuda
