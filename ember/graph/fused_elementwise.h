// FusedElementwise: a chain of float32 unary and binary ops run as one loop.
//
// Made by the fusion pass (passes/fuse_elementwise.cpp), never by user code.
// The program is a list of instructions over registers: registers 0..n_in-1
// hold the inputs, each instruction defines the next register. The kernel walks
// the output in blocks of kBlock elements that stay in L1, running every
// instruction over the block (cpu::unary_block_f32 / binary_block_f32), so a
// chain of k ops reads and writes memory once instead of k times, and each
// instruction's dispatch is paid once per block, not per element.
//
// Inputs either have the output's shape (any strides; non-contiguous ones are
// made contiguous first), have one element (a scalar), or broadcast to it
// (gathered per block). Outputs are chosen registers, so intermediates that
// are needed elsewhere leave the loop too.
//
// It runs after autodiff, so it has no vjp; its attributes spell the program
// out, so CSE, hashing and graph dumps see it like any other primitive. On a
// GPU the same program runs one element per thread
// (backend/cuda/fused_elementwise_kernels.h), whose program is one kernel
// argument; the fusion pass puts at most kMaxFusedOps ops in one program (a
// chosen bound: 32 ops make an 832-byte argument, well under CUDA's 4 KB).
#pragma once

#include <cstdint>
#include <vector>

#include "ember/core/op_kinds.h"
#include "ember/ops/primitive.h"

namespace ember::graph {

// The most ops one fused program holds (its inputs are then at most one more).
constexpr int32_t kMaxFusedOps = 32;

struct FusedInstr {
  bool binary = false;
  UnaryOp unary_op = UnaryOp::neg;
  BinaryOp binary_op = BinaryOp::add;
  int32_t a = 0, b = 0;  // operand registers
};

class FusedElementwisePrim final : public Primitive {
 public:
  static constexpr int64_t kBlock = 512;

  FusedElementwisePrim(Shape shape, int32_t n_inputs, std::vector<FusedInstr> program, std::vector<int32_t> outputs);
  const char* name() const override { return "fused_elementwise"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override;
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& inputs) const override;
  void eval_cpu(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const override;
  void eval_cuda(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const override;

  const std::vector<FusedInstr>& program() const { return program_; }

 private:
  Shape shape_;
  int32_t n_inputs_;
  std::vector<FusedInstr> program_;
  std::vector<int32_t> outputs_;
};

}  // namespace ember::graph
