// Parameter initialisation (torch.nn.init): fills a tensor in place, without
// recording gradients, from a seeded generator so that model initialisation is
// reproducible (pass a Generator, or nullptr for the default one).
#pragma once

#include <string>
#include <utility>

#include "ember/core/random.h"
#include "ember/core/tensor.h"

namespace ember::nn::init {

void uniform_(const Tensor& t, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean = 0.0, double stddev = 1.0, Generator* gen = nullptr);
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);

// (fan_in, fan_out) as PyTorch computes them: dims 1 and 0 times the product
// of the remaining (receptive field) dims; needs at least 2 dims.
std::pair<int64_t, int64_t> fan_in_and_out(const Tensor& t);
// The recommended gain for a nonlinearity: "linear", "sigmoid", "tanh",
// "relu", "leaky_relu" (with param = negative slope), "selu".
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

// U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
void xavier_normal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);

enum class FanMode { fan_in, fan_out };
// U(-b, b) with b = gain * sqrt(3 / fan); with the defaults PyTorch's Linear
// uses (a = sqrt(5), leaky_relu) this is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void kaiming_uniform_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                      const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
void kaiming_normal_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                     const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);

}  // namespace ember::nn::init
