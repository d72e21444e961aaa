// Matrix multiplication through the chosen BLAS-class library.
#pragma once

#include "ember/core/tensor.h"

namespace ember {

// NumPy/PyTorch matmul semantics: 1-D operands are promoted and the added
// dimension removed; batch dimensions broadcast. Both operands must have the
// same floating dtype (float32, float64, bfloat16, float16).
Tensor matmul(const Tensor& a, const Tensor& b);
// x @ w^T (+ bias), the Linear layer's product, without materialising w^T.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace ember
