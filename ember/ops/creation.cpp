// Creation ops. Constants are filled on the target device by the Fill
// primitive; ranges are computed on the host and copied.
#include "ember/ops/creation.h"
#include "ember/ops/primitive_registry.h"

#include <cmath>

#include "ember/backend/cpu/elementwise_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#endif
#include "ember/ops/dispatch.h"

namespace ember {
namespace {

class FillPrim final : public Primitive {
 public:
  FillPrim(Shape shape, double value, DType dtype) : shape_(std::move(shape)), value_(value), dtype_(dtype) {}
  const char* name() const override { return "full"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override { return {{"shape", shape_}, {"value", value_}, {"dtype", dtype_name(dtype_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>&) const override { return {{shape_, dtype_}}; }
  void eval_cpu(const std::vector<Tensor>&, std::vector<Tensor>& out) const override { cpu::fill(out[0], value_); }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>&, std::vector<Tensor>& out) const override { cuda::fill(out[0], value_); }
#endif

 private:
  Shape shape_;
  double value_;
  DType dtype_;
};

}  // namespace

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  std::vector<Tensor> out{Tensor::empty(shape, dtype, device)};
  FillPrim prim(shape, value, dtype);
  eval_primitive(prim, {}, out);
  return out[0];
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& x) { return full(x.shape(), 0.0, x.dtype(), x.device()); }
Tensor ones_like(const Tensor& x) { return full(x.shape(), 1.0, x.dtype(), x.device()); }
Tensor full_like(const Tensor& x, double value) { return full(x.shape(), value, x.dtype(), x.device()); }

Tensor arange(double start, double stop, double step, DType dtype, Device device) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
    fail("arange", "needs finite start/stop and a non-zero step, got start=", start, " stop=", stop, " step=", step);
  double count = std::ceil((stop - start) / step);
  if (count > 1e10) fail("arange", "would create ", count, " elements");
  int64_t n = count > 0 ? int64_t(count) : 0;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = start + double(i) * step;
  return tensor(v, {n}, dtype, device);
}

Tensor arange(int64_t stop, DType dtype, Device device) { return arange(0.0, double(stop), 1.0, dtype, device); }

Tensor eye(int64_t n, DType dtype, Device device) {
  EMBER_CHECK(n >= 0, "eye", "size must be non-negative, got ", n);
  std::vector<double> v(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[size_t(i * n + i)] = 1.0;
  return tensor(v, {n, n}, dtype, device);
}

void register_creation_primitives(PrimitiveRegistry& r) {
  r.add("full", {0, 0}, [](const Attrs& a) {
    return make_prim<FillPrim>(attr_ints(a, "shape", "full"), attr_double(a, "value", "full"),
                               dtype_from_name(attr_string(a, "dtype", "full")));
  });
}

}  // namespace ember
