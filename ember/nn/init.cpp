// Initialisers: random values are drawn on the host and copied into the tensor
// with copy_, wherever it lives.
#include "ember/nn/init.h"

#include <cmath>

#include "ember/nn/copy.h"
#include "ember/ops/random_ops.h"

namespace ember::nn::init {
namespace {

void check_floating(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined(), op, "got an undefined tensor");
  EMBER_CHECK(is_floating(t.dtype()), op, "expects a floating-point tensor, got ", dtype_name(t.dtype()));
}

// Random values are drawn in float32 or float64 on the host: the stream of
// numbers for a given seed is then the same whatever device the tensor is on.
DType draw_dtype(const Tensor& t) { return t.dtype() == DType::f64 ? DType::f64 : DType::f32; }

}  // namespace

void uniform_(const Tensor& t, double low, double high, Generator* gen) {
  check_floating(t, "uniform_");
  copy_(t, uniform(t.shape(), low, high, draw_dtype(t), Device::cpu(), gen));
}

void normal_(const Tensor& t, double mean, double stddev, Generator* gen) {
  check_floating(t, "normal_");
  copy_(t, normal(t.shape(), mean, stddev, draw_dtype(t), Device::cpu(), gen));
}

void constant_(const Tensor& t, double value) {
  EMBER_CHECK(t.defined(), "constant_", "got an undefined tensor");
  copy_(t, scalar(value, DType::f64));
}
void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

std::pair<int64_t, int64_t> fan_in_and_out(const Tensor& t) {
  EMBER_CHECK(t.ndim() >= 2, "fan_in_and_out", "needs a tensor with at least 2 dimensions, got shape ",
              shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.ndim(); ++d) receptive *= t.shape(d);
  return {t.shape(1) * receptive, t.shape(0) * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid") return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 3.0 / 4.0;
  fail("calculate_gain", "unknown nonlinearity '", nonlinearity,
       "' (expected linear, sigmoid, tanh, relu, leaky_relu or selu)");
}

void xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = fan_in_and_out(t);
  double a = gain * std::sqrt(6.0 / double(fan_in + fan_out));
  uniform_(t, -a, a, gen);
}

void xavier_normal_(const Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = fan_in_and_out(t);
  normal_(t, 0.0, gain * std::sqrt(2.0 / double(fan_in + fan_out)), gen);
}

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity, const char* op) {
  auto [fan_in, fan_out] = fan_in_and_out(t);
  int64_t fan = mode == FanMode::fan_in ? fan_in : fan_out;
  EMBER_CHECK(fan > 0, op, "fan is zero for shape ", shape_str(t.shape()));
  return calculate_gain(nonlinearity, a) / std::sqrt(double(fan));
}
}  // namespace

void kaiming_uniform_(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator* gen) {
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_");
  uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator* gen) {
  normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"), gen);
}

}  // namespace ember::nn::init
