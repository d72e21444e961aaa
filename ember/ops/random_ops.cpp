// Random tensor creation. Element i of a call draws from Philox block
// (first + i), where `first` is reserved from the generator, so values do not
// depend on thread count and a restored generator state replays exactly.
#include "ember/ops/random_ops.h"
#include "ember/ops/trace_hook.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "ember/backend/cpu/loops.h"
#include "ember/ops/elementwise.h"

namespace ember {
namespace {

Generator& pick(Generator* gen) { return gen ? *gen : default_generator(); }

// The largest value of T strictly below `bound` (a double that T may not hold exactly).
template <typename T>
T largest_below(double bound) {
  T t = T(compute_t<T>(bound));
  while (double(compute_t<T>(t)) >= bound) {
    if constexpr (std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>) {
      // One step down in the sign-magnitude encoding (from +0 to the smallest negative).
      uint16_t b = t.bits;
      uint16_t magnitude = b & 0x7fffu;
      if (magnitude == 0) b = 0x8001u;
      else if (b & 0x8000u) b = uint16_t(b + 1);
      else b = uint16_t(b - 1);
      t = T::from_bits(b);
    } else {
      t = std::nextafter(t, -std::numeric_limits<T>::infinity());
    }
  }
  return t;
}

// Fills a host tensor with f(philox words of element i), converted to dtype.
// With an `exclusive_high` (uniform's [low, high)), a value that rounds up to it
// in a narrower type is stepped back below it: a double just under 1.0 becomes
// 1.0f, and code such as -log(1 - u) relies on u < 1.
template <typename F>
Tensor generate(const Shape& shape, DType dtype, Device device, Generator* gen, const char* op, F&& f,
                double exclusive_high = std::numeric_limits<double>::quiet_NaN()) {
  for (int64_t d : shape) EMBER_CHECK(d >= 0, op, "negative dimension in shape ", shape_str(shape));
  // A traced graph would replay one draw forever; refuse instead of baking it in.
  if (tracing_active())
    fail(op, "random numbers cannot be compiled yet (a trace would repeat one draw on every call); "
             "run it outside the compiled function, or use eval mode / dropout 0");
  int64_t n = numel(shape);
  uint64_t seed_value = pick(gen).state().seed;
  uint64_t first = pick(gen).reserve(uint64_t(n));
  Tensor host = Tensor::empty(shape, dtype, Device::cpu());
  visit_dtype(dtype, op, [&]<typename T>() {
    T* p = static_cast<T*>(host.raw_data());
    [[maybe_unused]] T top{};
    if constexpr (!std::is_integral_v<T>)
      if (!std::isnan(exclusive_high)) top = largest_below<T>(exclusive_high);
    cpu::parallel_for(n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        auto w = philox4x32(seed_value, 0, first + uint64_t(i));
        double v = f(w);
        if constexpr (std::is_same_v<T, bool>) {
          p[i] = v != 0;
        } else {
          p[i] = T(compute_t<T>(v));
          if constexpr (!std::is_integral_v<T>)
            if (double(compute_t<T>(p[i])) >= exclusive_high) p[i] = top;
        }
      }
    });
  });
  return device.is_cpu() ? host : to_device(host, device);
}

void check_float(DType dtype, const char* op) {
  if (!is_floating(dtype)) fail(op, "needs a floating-point dtype, got ", dtype_name(dtype));
}

double gaussian(const std::array<uint32_t, 4>& w) {
  // Box-Muller; 1 - u keeps the log argument in (0, 1].
  double u1 = 1.0 - uniform_double(w[0], w[1]);
  double u2 = uniform_double(w[2], w[3]);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace

Tensor rand(const Shape& shape, DType dtype, Device device, Generator* gen) {
  return uniform(shape, 0.0, 1.0, dtype, device, gen);
}

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Device device, Generator* gen) {
  check_float(dtype, "uniform");
  if (!(low <= high)) fail("uniform", "low ", low, " must not exceed high ", high);
  return generate(
      shape, dtype, device, gen, "uniform",
      [&](const std::array<uint32_t, 4>& w) { return low + (high - low) * uniform_double(w[0], w[1]); },
      high > low ? high : std::numeric_limits<double>::quiet_NaN());
}

Tensor randn(const Shape& shape, DType dtype, Device device, Generator* gen) {
  return normal(shape, 0.0, 1.0, dtype, device, gen);
}

Tensor normal(const Shape& shape, double mean_value, double stddev, DType dtype, Device device, Generator* gen) {
  check_float(dtype, "normal");
  if (!(stddev >= 0)) fail("normal", "stddev must be non-negative, got ", stddev);
  return generate(shape, dtype, device, gen, "normal",
                  [&](const std::array<uint32_t, 4>& w) { return mean_value + stddev * gaussian(w); });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Device device, Generator* gen) {
  if (high <= low) fail("randint", "empty range [", low, ", ", high, ")");
  uint64_t span = uint64_t(high - low);
  return generate(shape, DType::i64, device, gen, "randint", [&](const std::array<uint32_t, 4>& w) {
    uint64_t r = (uint64_t(w[0]) << 32) | w[1];
    // 64 random bits modulo span: bias below 2^-40 for any span under 2^24.
    return double(low + int64_t(r % span));
  });
}

Tensor bernoulli_mask(const Shape& shape, double p, Device device, Generator* gen) {
  if (!(p >= 0 && p <= 1)) fail("bernoulli", "probability must be in [0, 1], got ", p);
  return generate(shape, DType::b8, device, gen, "bernoulli",
                  [&](const std::array<uint32_t, 4>& w) { return uniform_double(w[0], w[1]) < p ? 1.0 : 0.0; });
}

}  // namespace ember
