// The fused elementwise program on a GPU (see fused_elementwise_kernels.h):
// one thread per element, registers in its local memory, each op the shared
// scalar math of backend/elementwise_math.h (the same functions the unfused
// CUDA kernels compute).
#include "ember/backend/cuda/fused_elementwise_kernels.h"

#include "ember/backend/cuda/device_math.cuh"
#include "ember/backend/cuda/kernel_utils.cuh"
#include "ember/backend/elementwise_math.h"

namespace ember::cuda {
namespace {

__device__ __forceinline__ float unary_op(uint8_t op, float x) {
  switch (UnaryOp(op)) {
#define EMBER_CASE(K) \
  case UnaryOp::K: return elementwise::apply_unary<UnaryOp::K, DeviceMath, float>(x);
    EMBER_UNARY_MATH_OPS(EMBER_CASE)
#undef EMBER_CASE
    default: return __int_as_float(0x7fc00000);  // not produced by the fusion pass
  }
}

__device__ __forceinline__ float binary_op(uint8_t op, float a, float b) {
  switch (BinaryOp(op)) {
#define EMBER_CASE(K) \
  case BinaryOp::K: return elementwise::apply_binary<BinaryOp::K, DeviceMath, float>(a, b);
    EMBER_BINARY_ARITH_OPS(EMBER_CASE)
#undef EMBER_CASE
    default: return __int_as_float(0x7fc00000);
  }
}

__global__ void fused_kernel(const FusedProgram p, int64_t n) {
  float reg[kFusedMaxInputs + kFusedMaxSteps];
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    for (int k = 0; k < p.n_inputs; ++k) reg[k] = p.in[k][p.in_scalar[k] ? 0 : i];
    for (int s = 0; s < p.n_steps; ++s) {
      const FusedStep st = p.steps[s];
      reg[p.n_inputs + s] = st.binary ? binary_op(st.op, reg[st.a], reg[st.b]) : unary_op(st.op, reg[st.a]);
    }
    for (int o = 0; o < p.n_outputs; ++o) p.out[o][i] = reg[p.out_reg[o]];
  }
}

}  // namespace

void fused_elementwise(const FusedProgram& program, int64_t n) {
  if (n <= 0) return;
  fused_kernel<<<grid_for(n), kThreads, 0, stream()>>>(program, n);
  check_launch("fused_elementwise");
}

}  // namespace ember::cuda
