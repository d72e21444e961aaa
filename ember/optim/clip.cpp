// Gradient norm: a reduction primitive that accumulates |g|^p in float64 (one
// pass, no float64 copy of the gradient), then scaling out of place.
#include "ember/optim/clip.h"

#include <omp.h>

#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/backend/cpu/loops.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/optim_kernels.h"
#endif

namespace ember::optim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// sum |x|^p (or max |x| for p = inf) of a tensor, as a float64 scalar.
class PowerSumPrim final : public Primitive {
 public:
  explicit PowerSumPrim(double p) : p_(p) {}
  const char* name() const override { return "grad_norm"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override { return {{"p", p_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (!is_floating(in[0].dtype())) fail(name(), "expects floating-point gradients, got ", dtype_name(in[0].dtype()));
    if (!in[0].is_contiguous()) fail(name(), "expects a contiguous tensor");
    return {{{}, DType::f64}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    double result = visit_floating(in[0].dtype(), name(), [&]<typename T>() {
      const T* x = static_cast<const T*>(in[0].raw_data());
      int64_t n = in[0].numel();
      double acc = 0.0;
      if (std::isinf(p_)) {
        // Per-thread maxima combined here: an OpenMP max reduction would drop a NaN
        // when combining, and a NaN gradient must never look finite.
        std::vector<double> partial(size_t(omp_get_max_threads()), 0.0);
#pragma omp parallel if (n >= cpu::kParallelGrain)
        {
          double local = 0.0;
#pragma omp for schedule(static)
          for (int64_t i = 0; i < n; ++i) {
            double a = std::fabs(double(x[i]));
            local = (a > local || std::isnan(a)) ? a : local;
          }
          partial[size_t(omp_get_thread_num())] = local;
        }
        for (double part : partial) acc = (part > acc || std::isnan(part)) ? part : acc;
      } else if (p_ == 2.0) {
#pragma omp parallel for reduction(+ : acc) if (n >= cpu::kParallelGrain)
        for (int64_t i = 0; i < n; ++i) {
          double v = double(x[i]);
          acc += v * v;
        }
      } else {
#pragma omp parallel for reduction(+ : acc) if (n >= cpu::kParallelGrain)
        for (int64_t i = 0; i < n; ++i) acc += std::pow(std::fabs(double(x[i])), p_);
      }
      return acc;
    });
    *static_cast<double*>(out[0].raw_data()) = result;
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::power_sum(in[0], p_, out[0]);
  }
#endif

 private:
  double p_;
};

}  // namespace

double grad_norm(const std::vector<Tensor>& params, double norm_type) {
  EMBER_CHECK(norm_type >= 1.0, "grad_norm", "norm_type must be >= 1 or infinity, got ", norm_type);
  NoGradGuard no_grad;
  bool inf_norm = std::isinf(norm_type);
  double total = 0.0;
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined() || g.numel() == 0) continue;
    double part = apply1(make_prim<PowerSumPrim>(norm_type), {contiguous(g)}).item<double>();
    if (inf_norm) total = (part > total || std::isnan(part)) ? part : total;
    else total += part;
  }
  if (inf_norm) return total;
  return norm_type == 2.0 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  EMBER_CHECK(max_norm >= 0.0, "clip_grad_norm_", "max_norm must be non-negative, got ", max_norm);
  double total = grad_norm(params, norm_type);
  if (!std::isfinite(total)) {
    if (error_if_nonfinite)
      fail("clip_grad_norm_", "the total norm of order ", norm_type, " of the gradients is ", total,
           "; they cannot be clipped");
    return total;
  }
  double coef = max_norm / (total + 1e-6);
  if (coef >= 1.0) return total;
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    // 16-bit gradients are scaled in float32 so that the coefficient is not rounded to 8 bits.
    bool narrow = g.dtype() == DType::bf16 || g.dtype() == DType::f16;
    Tensor scaled = narrow ? cast(cast(g, DType::f32) * coef, g.dtype()) : g * coef;
    // Out of place: the old gradient tensor may be shared with the caller.
    p.set_grad(scaled.detach());
  }
  return total;
}

Tensor clip_grad_norm_traceable_(const std::vector<Tensor>& params, double max_norm, double norm_type) {
  EMBER_CHECK(max_norm >= 0.0, "clip_grad_norm_", "max_norm must be non-negative, got ", max_norm);
  EMBER_CHECK(norm_type >= 1.0, "clip_grad_norm_", "norm_type must be >= 1 or infinity, got ", norm_type);
  NoGradGuard no_grad;
  const bool inf_norm = std::isinf(norm_type);
  Tensor total;
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined() || g.numel() == 0) continue;
    Tensor part = apply1(make_prim<PowerSumPrim>(norm_type), {contiguous(g)});
    total = !total.defined() ? part : inf_norm ? maximum(total, part) : total + part;
  }
  if (!total.defined()) return scalar(0.0, DType::f64);
  if (!inf_norm) total = norm_type == 2.0 ? sqrt(total) : pow(total, 1.0 / norm_type);
  const Tensor coef = minimum(max_norm / (total + 1e-6), scalar(1.0, DType::f64, total.device()));
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    const bool narrow = g.dtype() == DType::bf16 || g.dtype() == DType::f16;
    const DType compute = narrow ? DType::f32 : g.dtype();
    p.set_grad(cast(cast(g, compute) * cast(coef, compute), g.dtype()).detach());
  }
  return total;
}

}  // namespace ember::optim
