// multinomial: categorical sampling from unnormalised probabilities with the
// Philox generator. Every draw reads its own reserved Philox block (row-major
// over rows and samples, or rows and categories), so a seed gives the same
// samples for any thread count, and the generator advances by a fixed amount.
//
// With replacement (and for a single sample, where both modes agree): invert
// the row's cumulative sums at u * total. Without replacement: the
// exponential-race form of sequential sampling -- category i gets the key
// log(u_i) / p_i and the samples are the categories with the largest keys, in
// order, which has exactly the distribution of drawing one at a time and
// removing each pick (Efraimidis & Spirakis).
#include <algorithm>
#include <cmath>
#include <vector>

#include "ember/autograd/grad_mode.h"
#include "ember/backend/cpu/loops.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/random_ops.h"

namespace ember {

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator* gen) {
  const char* op = "multinomial";
  if (!probs.defined()) fail(op, "probabilities are undefined");
  if (probs.ndim() != 1 && probs.ndim() != 2)
    fail(op, "probabilities must be 1-D [C] or 2-D [N, C], got shape ", shape_str(probs.shape()));
  if (!is_floating(probs.dtype()))
    fail(op, "probabilities must be a floating-point tensor, got ", dtype_name(probs.dtype()));
  const int64_t rows = probs.ndim() == 1 ? 1 : probs.shape()[0];
  const int64_t C = probs.shape().back();
  if (C == 0) fail(op, "needs at least one category, got shape ", shape_str(probs.shape()));
  if (num_samples <= 0) fail(op, "num_samples must be positive, got ", num_samples);

  Tensor host;
  {
    NoGradGuard no_grad;
    host = contiguous(cast(to_device(probs.detach(), Device::cpu()), DType::f64));
  }
  const double* p = host.data<double>();

  // Validate every row before consuming any randomness.
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0;
    int64_t nonzero = 0;
    for (int64_t c = 0; c < C; ++c) {
      double v = p[r * C + c];
      if (!std::isfinite(v) || v < 0)
        fail(op, "row ", r, " has probability ", v, " at category ", c, "; probabilities must be finite and >= 0");
      total += v;
      nonzero += v > 0;
    }
    if (nonzero == 0) fail(op, "row ", r, " has all-zero probabilities");
    if (!std::isfinite(total)) fail(op, "row ", r, " sums to infinity; scale the probabilities down");
    if (!replacement && num_samples > nonzero)
      fail(op, "cannot draw ", num_samples, " samples without replacement from row ", r, ", which has only ",
           nonzero, " non-zero categories");
  }

  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.state().seed;
  Tensor out = Tensor::empty(probs.ndim() == 1 ? Shape{num_samples} : Shape{rows, num_samples}, DType::i64);
  int64_t* o = out.data<int64_t>();

  if (replacement || num_samples == 1) {
    const uint64_t first = g.reserve(uint64_t(rows * num_samples));
    std::vector<double> cdf(size_t(rows * C));
    std::vector<int64_t> last_nonzero(static_cast<size_t>(rows));
    cpu::parallel_for(rows, std::max<int64_t>(1, 8192 / C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        double acc = 0;
        for (int64_t c = 0; c < C; ++c) {
          acc += p[r * C + c];
          cdf[size_t(r * C + c)] = acc;
          if (p[r * C + c] > 0) last_nonzero[size_t(r)] = c;
        }
      }
    });
    cpu::parallel_for(rows * num_samples, 1024, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        int64_t r = i / num_samples;
        auto w = philox4x32(seed, 0, first + uint64_t(i));
        // Compare against the running sums themselves (not a normalised copy):
        // a zero-probability category can then never be chosen.
        double target = uniform_double(w[0], w[1]) * cdf[size_t(r * C + C - 1)];
        const double* row = cdf.data() + r * C;
        int64_t c = std::upper_bound(row, row + C, target) - row;
        o[i] = std::min(c, last_nonzero[size_t(r)]);  // u * total may round up to total
      }
    });
    return probs.device().is_cpu() ? out : to_device(out, probs.device());
  }

  const uint64_t first = g.reserve(uint64_t(rows * C));
  cpu::parallel_for(rows, std::max<int64_t>(1, 8192 / C), [&](int64_t b, int64_t e) {
    std::vector<std::pair<double, int64_t>> keys(static_cast<size_t>(C));
    for (int64_t r = b; r < e; ++r) {
      for (int64_t c = 0; c < C; ++c) {
        auto w = philox4x32(seed, 0, first + uint64_t(r * C + c));
        double u = 1.0 - uniform_double(w[0], w[1]);  // in (0, 1]: log(u) is finite
        double pc = p[r * C + c];
        keys[size_t(c)] = {pc > 0 ? std::log(u) / pc : -INFINITY, c};
      }
      // Largest key first; equal keys (vanishingly rare) by category index.
      auto before = [](const std::pair<double, int64_t>& a, const std::pair<double, int64_t>& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      };
      std::partial_sort(keys.begin(), keys.begin() + num_samples, keys.end(), before);
      for (int64_t s = 0; s < num_samples; ++s) o[r * num_samples + s] = keys[size_t(s)].second;
    }
  });
  return probs.device().is_cpu() ? out : to_device(out, probs.device());
}

}  // namespace ember
