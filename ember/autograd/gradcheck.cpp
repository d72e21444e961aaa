// Central-difference gradient check.
#include "ember/autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "ember/autograd/engine.h"
#include "ember/autograd/grad_mode.h"
#include "ember/ops/ops.h"

namespace ember {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, double eps, double atol, double rtol) {
  std::vector<Tensor> xs;
  std::vector<size_t> diff;  // indices of differentiated inputs
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (is_floating(inputs[i].dtype())) {
      Tensor x = clone(cast(inputs[i].detach(), DType::f64));
      x.requires_grad_(true);
      xs.push_back(x);
      diff.push_back(i);
    } else {
      xs.push_back(inputs[i]);
    }
  }
  Tensor out = fn(xs);
  Generator gen(1234);
  Tensor u = randn(out.shape(), DType::f64, Device::cpu(), &gen);
  std::vector<Tensor> wrt;
  for (size_t i : diff) wrt.push_back(xs[i]);
  std::vector<Tensor> analytic = grad({out}, wrt, {u}, false, false, /*allow_unused=*/true);

  auto objective = [&]() {
    NoGradGuard no_grad;
    return sum(fn(xs) * u).item<double>();
  };
  GradcheckResult result;
  for (size_t k = 0; k < diff.size(); ++k) {
    Tensor& x = xs[diff[k]];
    double* p = x.data<double>();
    std::vector<double> a = analytic[k].defined() ? analytic[k].to_vector<double>()
                                                  : std::vector<double>(size_t(x.numel()), 0.0);
    for (int64_t j = 0; j < x.numel(); ++j) {
      double saved = p[j];
      p[j] = saved + eps;
      double f_plus = objective();
      p[j] = saved - eps;
      double f_minus = objective();
      p[j] = saved;
      double numeric = (f_plus - f_minus) / (2 * eps);
      double err = std::abs(numeric - a[size_t(j)]);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (result.ok && !(err <= atol + rtol * std::abs(numeric))) {
        result.ok = false;
        std::ostringstream os;
        os << "input " << diff[k] << " element " << j << ": analytic " << a[size_t(j)] << " vs numeric " << numeric;
        result.message = os.str();
      }
    }
  }
  return result;
}

}  // namespace ember
