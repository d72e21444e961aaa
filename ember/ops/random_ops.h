// Random tensors from the seeded Philox generator (ember/core/random.h).
// Each call consumes generator state, so a sequence of calls after
// manual_seed(s) is reproducible, and restoring a saved state replays it.
#pragma once

#include "ember/core/random.h"
#include "ember/core/tensor.h"

namespace ember {

Tensor rand(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu(),
            Generator* gen = nullptr);  // uniform [0, 1)
Tensor randn(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu(),
             Generator* gen = nullptr);  // standard normal
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::f32,
               Device device = Device::cpu(), Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double stddev, DType dtype = DType::f32,
              Device device = Device::cpu(), Generator* gen = nullptr);
// Integers in [low, high), int64.
Tensor randint(int64_t low, int64_t high, const Shape& shape, Device device = Device::cpu(),
               Generator* gen = nullptr);
// bool mask, true with probability p.
Tensor bernoulli_mask(const Shape& shape, double p, Device device = Device::cpu(), Generator* gen = nullptr);
// Draws num_samples indices per row from the (unnormalised, non-negative)
// probabilities of a [C] or [N, C] tensor; int64 result [num_samples] or [N, num_samples].
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false, Generator* gen = nullptr);

}  // namespace ember
