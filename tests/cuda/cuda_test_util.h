// The CUDA backend's tests: every primitive computed on the GPU must agree with
// the CPU kernels on the same random inputs, forward and backward. These tests
// skip where the build has no CUDA backend or the machine no GPU (CI), and run
// on a lent GPU (scripts/device_check.sh).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "ember/ember.h"

// Skips the test unless a GPU is usable.
#define EMBER_REQUIRE_GPU()                                                                   \
  do {                                                                                        \
    if (::ember::cuda_device_count() == 0)                                                    \
      GTEST_SKIP() << (::ember::cuda_built() ? "no GPU visible" : "built without the CUDA backend"); \
  } while (0)

namespace ember::testing {

using OpFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct CudaCheck {
  double rtol = 1e-5;  // per element: |gpu - cpu| <= atol + rtol * |cpu|
  double atol = 1e-5;
  bool grads = true;   // also compare the gradients of the floating-point inputs
};

// Runs `fn` on `inputs` (CPU tensors) and on copies moved to cuda:0, and expects
// the outputs, and the gradients of every floating-point input (of the sum of
// each floating output times a fixed random weight), to agree within `check`.
void expect_cuda_matches_cpu(const OpFn& fn, const std::vector<Tensor>& inputs, const CudaCheck& check = {},
                             const char* what = "");

// Element-by-element comparison of a CUDA (or CPU) tensor with a CPU reference.
void expect_close(const Tensor& got, const Tensor& want, const CudaCheck& check, const std::string& what);

}  // namespace ember::testing
