// Tensor creation: constants, ranges, identity.
#pragma once

#include "ember/core/tensor.h"

namespace ember {

Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
Tensor full_like(const Tensor& x, double value);
// [start, stop) with step; the dtype defaults to int64 like torch.arange on integers.
Tensor arange(double start, double stop, double step = 1.0, DType dtype = DType::i64, Device device = Device::cpu());
Tensor arange(int64_t stop, DType dtype = DType::i64, Device device = Device::cpu());
Tensor eye(int64_t n, DType dtype = DType::f32, Device device = Device::cpu());

}  // namespace ember
