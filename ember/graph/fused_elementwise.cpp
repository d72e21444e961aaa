// The fused elementwise kernel: block-wise interpretation of a short program (see fused_elementwise.h).
#include "ember/graph/fused_elementwise.h"

#include <algorithm>

#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/loops.h"
#include "ember/core/error.h"

#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#include "ember/backend/cuda/fused_elementwise_kernels.h"

// The pass's bound on a program must fit the CUDA kernel's.
static_assert(ember::cuda::kFusedMaxSteps >= ember::graph::kMaxFusedOps &&
                  ember::cuda::kFusedMaxInputs >= ember::graph::kMaxFusedOps + 1 &&
                  ember::cuda::kFusedMaxOutputs >= ember::graph::kMaxFusedOps,
              "fused programs the pass makes must fit the CUDA kernel");
#endif

namespace ember::graph {

FusedElementwisePrim::FusedElementwisePrim(Shape shape, int32_t n_inputs, std::vector<FusedInstr> program,
                                           std::vector<int32_t> outputs)
    : shape_(std::move(shape)), n_inputs_(n_inputs), program_(std::move(program)), outputs_(std::move(outputs)) {
  const int32_t n_regs = n_inputs_ + int32_t(program_.size());
  for (size_t i = 0; i < program_.size(); ++i) {
    const int32_t defined = n_inputs_ + int32_t(i);
    const FusedInstr& in = program_[i];
    if (in.a < 0 || in.a >= defined || (in.binary && (in.b < 0 || in.b >= defined)))
      fail("fused_elementwise", "instruction ", i, " reads a register not defined before it");
  }
  for (int32_t r : outputs_)
    if (r < 0 || r >= n_regs) fail("fused_elementwise", "output register ", r, " out of range");
}

Attrs FusedElementwisePrim::attrs() const {
  // The program as text: "r2=mul(r0,r1); r3=exp(r2)", and which registers leave.
  std::string text;
  for (size_t i = 0; i < program_.size(); ++i) {
    const FusedInstr& in = program_[i];
    text += (i ? "; r" : "r") + std::to_string(n_inputs_ + int32_t(i)) + "=";
    text += in.binary ? binary_op_name(in.binary_op) : unary_op_name(in.unary_op);
    text += "(r" + std::to_string(in.a) + (in.binary ? ",r" + std::to_string(in.b) : std::string()) + ")";
  }
  std::vector<int64_t> outs(outputs_.begin(), outputs_.end());
  return {{"program", text}, {"outputs", outs}, {"shape", shape_}};
}

std::vector<TensorSpec> FusedElementwisePrim::output_specs(const std::vector<Tensor>& inputs) const {
  if (int32_t(inputs.size()) != n_inputs_)
    fail("fused_elementwise", "expected ", n_inputs_, " inputs, got ", inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype() != DType::f32)
      fail("fused_elementwise", "input ", i, " must be float32, got ", dtype_name(inputs[i].dtype()));
    broadcast_shapes(inputs[i].shape(), shape_, "fused_elementwise");
  }
  return std::vector<TensorSpec>(outputs_.size(), TensorSpec{shape_, DType::f32});
}

void FusedElementwisePrim::eval_cpu(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const {
  const int64_t n = numel(shape_);
  // Each input as a contiguous full-size array (step 1), a scalar (step 0), or,
  // for a broadcast input, materialised at the output's shape. Broadcast inputs
  // are rare in fused chains (a bias or a per-row scale), and a copy keeps the
  // inner loop simple.
  std::vector<Tensor> holders(inputs.size());
  std::vector<const float*> base(inputs.size());
  std::vector<int64_t> step(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (t.numel() == 1) {
      holders[i] = t;
      step[i] = 0;
    } else if (t.shape() == shape_ && t.is_contiguous()) {
      holders[i] = t;
      step[i] = 1;
    } else {
      holders[i] = Tensor::empty(shape_, DType::f32, t.device());
      cpu::copy_cast(t, holders[i]);
      step[i] = 1;
    }
    base[i] = static_cast<const float*>(holders[i].raw_data());
  }
  std::vector<float*> out_ptr(outputs.size());
  for (size_t k = 0; k < outputs.size(); ++k) out_ptr[k] = static_cast<float*>(outputs[k].raw_data());

  const int64_t n_regs = n_inputs_ + int64_t(program_.size());
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  cpu::parallel_for(blocks, 8, [&](int64_t b0, int64_t b1) {
    // Registers for the program's results, one block each, per thread.
    std::vector<float> scratch(size_t(program_.size()) * kBlock);
    std::vector<const float*> reg(static_cast<size_t>(n_regs));
    std::vector<int64_t> reg_step(size_t(n_regs), 1);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t start = blk * kBlock;
      const int64_t len = std::min(kBlock, n - start);
      for (int32_t i = 0; i < n_inputs_; ++i) {
        reg[size_t(i)] = base[size_t(i)] + (step[size_t(i)] ? start : 0);
        reg_step[size_t(i)] = step[size_t(i)];
      }
      for (size_t p = 0; p < program_.size(); ++p) {
        const FusedInstr& in = program_[p];
        float* dst = scratch.data() + p * kBlock;
        const int64_t r = n_inputs_ + int64_t(p);
        if (in.binary) {
          cpu::binary_block_f32(in.binary_op, reg[size_t(in.a)], reg_step[size_t(in.a)], reg[size_t(in.b)],
                                reg_step[size_t(in.b)], dst, len);
        } else if (reg_step[size_t(in.a)] == 1) {
          cpu::unary_block_f32(in.unary_op, reg[size_t(in.a)], dst, len);
        } else {
          float v;
          cpu::unary_block_f32(in.unary_op, reg[size_t(in.a)], &v, 1);
          std::fill(dst, dst + len, v);
        }
        reg[size_t(r)] = dst;
        reg_step[size_t(r)] = 1;
      }
      for (size_t k = 0; k < outputs_.size(); ++k) {
        const int32_t r = outputs_[k];
        float* dst = out_ptr[k] + start;
        if (reg_step[size_t(r)] == 1) std::copy(reg[size_t(r)], reg[size_t(r)] + len, dst);
        else std::fill(dst, dst + len, reg[size_t(r)][0]);
      }
    }
  });
}

void FusedElementwisePrim::eval_cuda(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const {
#ifdef EMBER_WITH_CUDA
  if (int64_t(program_.size()) > cuda::kFusedMaxSteps || n_inputs_ > cuda::kFusedMaxInputs ||
      int64_t(outputs_.size()) > cuda::kFusedMaxOutputs)
    fail("fused_elementwise", "a program of ", program_.size(), " ops, ", n_inputs_, " inputs and ", outputs_.size(),
         " outputs is larger than the CUDA kernel takes (", cuda::kFusedMaxSteps, ", ", cuda::kFusedMaxInputs, ", ",
         cuda::kFusedMaxOutputs, ")");
  if (int32_t(inputs.size()) != n_inputs_)
    fail("fused_elementwise", "expected ", n_inputs_, " inputs, got ", inputs.size());
  const int64_t n = numel(shape_);
  cuda::FusedProgram p;
  p.n_inputs = n_inputs_;
  p.n_steps = int32_t(program_.size());
  p.n_outputs = int32_t(outputs_.size());
  // As on the CPU: each input a full contiguous array, a scalar, or a
  // broadcast input materialised at the output's shape.
  std::vector<Tensor> holders(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (t.numel() == 1) {
      holders[i] = t;
      p.in_scalar[i] = 1;
    } else if (t.shape() == shape_ && t.is_contiguous()) {
      holders[i] = t;
    } else {
      holders[i] = Tensor::empty(shape_, DType::f32, t.device());
      cuda::copy_cast(t, holders[i]);
    }
    p.in[i] = static_cast<const float*>(holders[i].raw_data());
  }
  for (size_t s = 0; s < program_.size(); ++s) {
    const FusedInstr& in = program_[s];
    p.steps[s].binary = in.binary;
    p.steps[s].op = in.binary ? uint8_t(in.binary_op) : uint8_t(in.unary_op);
    p.steps[s].a = int16_t(in.a);
    p.steps[s].b = int16_t(in.b);
  }
  for (size_t k = 0; k < outputs_.size(); ++k) {
    p.out[k] = static_cast<float*>(outputs[k].raw_data());
    p.out_reg[k] = int16_t(outputs_[k]);
  }
  cuda::fused_elementwise(p, n);
#else
  Primitive::eval_cuda(inputs, outputs);
#endif
}

}  // namespace ember::graph
