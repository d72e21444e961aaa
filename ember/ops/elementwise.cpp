// Elementwise primitives (Unary, Binary, Where, Clamp, Cast/Copy) and the public
// elementwise ops. Each vjp below is written in ember ops, so it can itself be
// differentiated (second-order gradients).
#include "ember/ops/elementwise.h"
#include "ember/ops/primitive_registry.h"

#include <cmath>
#include <limits>

#include "ember/backend/cpu/elementwise_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#endif
#include "ember/ops/creation.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/reduce.h"

namespace ember {
namespace {

constexpr double kTwoOverSqrtPi = 1.12837916709551257390;

class UnaryPrim final : public Primitive {
 public:
  explicit UnaryPrim(UnaryOp op) : op_(op) {}
  const char* name() const override { return unary_op_name(op_); }
  Attrs attrs() const override { return {}; }
  bool differentiable() const override { return op_ != UnaryOp::logical_not && op_ != UnaryOp::sign; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    DType dt = in[0].dtype();
    if (op_ == UnaryOp::logical_not) return {{in[0].shape(), DType::b8}};
    bool int_ok = op_ == UnaryOp::neg || op_ == UnaryOp::abs || op_ == UnaryOp::relu || op_ == UnaryOp::sign ||
                  op_ == UnaryOp::square;
    if (!is_floating(dt) && !int_ok)
      fail(name(), "expects a floating-point tensor, got ", dtype_name(dt), "; cast it first");
    if (dt == DType::b8) fail(name(), "is not defined for bool tensors");
    return {{in[0].shape(), dt}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (op_ == UnaryOp::logical_not) {
      // logical_not reads any dtype and writes bool: compare with zero.
      Tensor zero = zeros({}, in[0].dtype());
      cpu::binary(BinaryOp::eq, in[0], zero, out[0]);
      return;
    }
    cpu::unary(op_, in[0], out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::unary(op_, in[0], out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>&) const override {
    const Tensor& x = in[0];
    const Tensor& y = out[0];
    const Tensor& g = ct[0];
    switch (op_) {
      case UnaryOp::neg: return {neg(g)};
      case UnaryOp::abs: return {g * sign(x)};
      case UnaryOp::exp: return {g * y};
      case UnaryOp::log: return {g / x};
      case UnaryOp::sqrt: return {g / (2.0 * y)};
      case UnaryOp::rsqrt: return {g * (-0.5) * y * y * y};
      case UnaryOp::tanh: return {g * (1.0 - y * y)};
      case UnaryOp::sigmoid: return {g * y * (1.0 - y)};
      case UnaryOp::relu: return {g * cast(gt(x, scalar_like(0.0, x)), x.dtype())};
      // One fused pass; see activation_grad.cpp.
      case UnaryOp::gelu:
      case UnaryOp::gelu_tanh:
      case UnaryOp::silu: return {activation_grad(op_, x, g)};
      case UnaryOp::sin: return {g * cos(x)};
      case UnaryOp::cos: return {neg(g * sin(x))};
      case UnaryOp::erf: return {g * kTwoOverSqrtPi * exp(neg(x * x))};
      case UnaryOp::square: return {g * 2.0 * x};
      case UnaryOp::reciprocal: return {neg(g * y * y)};
      case UnaryOp::sign:
      case UnaryOp::logical_not: return {Tensor()};
    }
    return {Tensor()};
  }
  UnaryOp op() const { return op_; }

 private:
  UnaryOp op_;
};

class BinaryPrim final : public Primitive {
 public:
  explicit BinaryPrim(BinaryOp op) : op_(op) {}
  const char* name() const override { return binary_op_name(op_); }
  bool differentiable() const override { return !is_comparison(op_); }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in[0].dtype() != in[1].dtype())
      fail(name(), "operands must have one dtype after promotion, got ", dtype_name(in[0].dtype()), " and ",
           dtype_name(in[1].dtype()));
    Shape s = broadcast_shapes(in[0].shape(), in[1].shape(), name());
    if (!is_comparison(op_) && in[0].dtype() == DType::b8)
      fail(name(), "is not defined for bool tensors; cast them to a number type or use logical_and/logical_or");
    return {{s, is_comparison(op_) ? DType::b8 : in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::binary(op_, in[0], in[1], out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::binary(op_, in[0], in[1], out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                          const std::vector<Tensor>& ct, const std::vector<bool>& needs) const override {
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    const Tensor& g = ct[0];
    switch (op_) {
      case BinaryOp::add: return {g, g};
      case BinaryOp::sub: return {g, needs[1] ? neg(g) : Tensor()};
      case BinaryOp::mul: return {needs[0] ? g * b : Tensor(), needs[1] ? g * a : Tensor()};
      case BinaryOp::div: return {needs[0] ? g / b : Tensor(), needs[1] ? neg(g * a / (b * b)) : Tensor()};
      case BinaryOp::pow: {
        Tensor ga, gb;
        if (needs[0]) ga = g * b * pow(a, b - 1.0);
        // d/db a^b = a^b log a; defined as 0 where a == 0 (the limit for b > 0), as PyTorch does.
        if (needs[1]) gb = where(eq(a, scalar_like(0.0, a)), zeros_like(a), g * out[0] * log(a));
        return {ga, gb};
      }
      case BinaryOp::maximum:
      case BinaryOp::minimum: {
        // Ties split the gradient evenly, matching PyTorch.
        Tensor wins = cast(op_ == BinaryOp::maximum ? gt(a, b) : lt(a, b), g.dtype());
        Tensor ties = cast(eq(a, b), g.dtype());
        Tensor share_a = wins + 0.5 * ties;
        return {needs[0] ? g * share_a : Tensor(), needs[1] ? g * (1.0 - share_a) : Tensor()};
      }
      default: return {Tensor(), Tensor()};
    }
  }

 private:
  BinaryOp op_;
};

class WherePrim final : public Primitive {
 public:
  const char* name() const override { return "where"; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in[0].dtype() != DType::b8) fail("where", "condition must be bool, got ", dtype_name(in[0].dtype()));
    if (in[1].dtype() != in[2].dtype())
      fail("where", "branches must have one dtype, got ", dtype_name(in[1].dtype()), " and ", dtype_name(in[2].dtype()));
    Shape s = broadcast_shapes(broadcast_shapes(in[0].shape(), in[1].shape(), "where"), in[2].shape(), "where");
    return {{s, in[1].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::where(in[0], in[1], in[2], out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::where(in[0], in[1], in[2], out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    Tensor zero = scalar_like(0.0, ct[0]);
    return {Tensor(), needs[1] ? where(in[0], ct[0], zero) : Tensor(), needs[2] ? where(in[0], zero, ct[0]) : Tensor()};
  }
};

class ClampPrim final : public Primitive {
 public:
  ClampPrim(double lo, double hi) : lo_(lo), hi_(hi) {}
  const char* name() const override { return "clamp"; }
  Attrs attrs() const override { return {{"lo", lo_}, {"hi", hi_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in[0].dtype() == DType::b8) fail("clamp", "is not defined for bool tensors");
    if (std::isnan(lo_) || std::isnan(hi_)) fail("clamp", "bounds must not be NaN, got [", lo_, ", ", hi_, "]");
    if (lo_ > hi_) fail("clamp", "lower bound ", lo_, " is above upper bound ", hi_);
    return {{in[0].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::clamp(in[0], lo_, hi_, out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::clamp(in[0], lo_, hi_, out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    const Tensor& x = in[0];
    Tensor inside = logical_and(ge(x, scalar_like(lo_, x)), le(x, scalar_like(hi_, x)));
    return {ct[0] * cast(inside, ct[0].dtype())};
  }

 private:
  double lo_, hi_;
};

// Copy to a contiguous tensor, converting the dtype (the identity cast is `contiguous`).
class CastPrim final : public Primitive {
 public:
  explicit CastPrim(DType dtype) : dtype_(dtype) {}
  const char* name() const override { return "cast"; }
  Attrs attrs() const override { return {{"dtype", dtype_name(dtype_)}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    return {{in[0].shape(), dtype_}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::copy_cast(in[0], out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::copy_cast(in[0], out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    if (!is_floating(dtype_)) return {Tensor()};
    return {cast(ct[0], in[0].dtype())};
  }

 private:
  DType dtype_;
};

// Moves bytes between devices (a contiguous copy on the target device).
class ToDevicePrim final : public Primitive {
 public:
  explicit ToDevicePrim(Device device) : device_(device) {}
  const char* name() const override { return "to_device"; }
  Attrs attrs() const override { return {{"device", device_.str()}}; }
  bool is_view() const override { return true; }  // allocates itself, on the target device
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    return {{in[0].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    return {to_device(ct[0], in[0].device())};
  }

 private:
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const {
    Tensor src = contiguous(in[0].detach());
    Tensor dst = Tensor::empty(src.shape(), src.dtype(), device_);
    copy_bytes(dst, src);
    TensorImpl& o = out[0].impl();
    o.storage = dst.storage();
    o.device = device_;
  }
  Device device_;
};

void check_defined(const Tensor& t, const char* op, int index) {
  if (!t.defined()) fail(op, "input ", index, " is an undefined tensor");
}

Tensor promote_and_apply(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_defined(a, binary_op_name(op), 0);
  check_defined(b, binary_op_name(op), 1);
  DType dt = promote_types(a.dtype(), b.dtype());
  Tensor x = a.dtype() == dt ? a : cast(a, dt);
  Tensor y = b.dtype() == dt ? b : cast(b, dt);
  return apply1(make_prim<BinaryPrim>(op), {x, y});
}

}  // namespace

Tensor unary(UnaryOp op, const Tensor& x) { return apply1(make_prim<UnaryPrim>(op), {x}); }
Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor gelu(const Tensor& x, bool tanh_approximation) {
  return unary(tanh_approximation ? UnaryOp::gelu_tanh : UnaryOp::gelu, x);
}
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }
Tensor sin(const Tensor& x) { return unary(UnaryOp::sin, x); }
Tensor cos(const Tensor& x) { return unary(UnaryOp::cos, x); }
Tensor erf(const Tensor& x) { return unary(UnaryOp::erf, x); }
Tensor sign(const Tensor& x) { return unary(UnaryOp::sign, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor reciprocal(const Tensor& x) { return unary(UnaryOp::reciprocal, x); }
Tensor logical_not(const Tensor& x) { return unary(UnaryOp::logical_not, x); }

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) { return promote_and_apply(op, a, b); }
Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary(BinaryOp::pow, a, b); }
Tensor pow(const Tensor& a, double exponent) { return pow(a, scalar_like(exponent, a)); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary(BinaryOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary(BinaryOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary(BinaryOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary(BinaryOp::ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return binary(BinaryOp::logical_and, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return binary(BinaryOp::logical_or, a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined(a, "where", 1);
  check_defined(b, "where", 2);
  DType dt = promote_types(a.dtype(), b.dtype());
  return apply1(make_prim<WherePrim>(), {cond, a.dtype() == dt ? a : cast(a, dt), b.dtype() == dt ? b : cast(b, dt)});
}
Tensor where(const Tensor& cond, const Tensor& a, double b) {
  check_defined(a, "where", 1);
  return where(cond, a, scalar_like(b, a));
}

Tensor clamp(const Tensor& x, double lo, double hi) { return apply1(make_prim<ClampPrim>(lo, hi), {x}); }

Tensor cast(const Tensor& x, DType dtype) {
  check_defined(x, "cast", 0);
  if (x.dtype() == dtype) return x;
  return apply1(make_prim<CastPrim>(dtype), {x});
}

Tensor contiguous(const Tensor& x) {
  check_defined(x, "contiguous", 0);
  if (x.is_contiguous()) return x;
  return apply1(make_prim<CastPrim>(x.dtype()), {x});
}

Tensor clone(const Tensor& x) { return apply1(make_prim<CastPrim>(x.dtype()), {x}); }

Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  return apply1(make_prim<ToDevicePrim>(device), {x});
}

Tensor scalar_like(double value, const Tensor& like) {
  DType dt = like.dtype();
  if (!is_floating(dt) && value != std::floor(value)) dt = DType::f32;
  if (dt == DType::b8) dt = DType::i64;
  return scalar(value, dt, like.device());
}

Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

void register_elementwise_primitives(PrimitiveRegistry& r) {
  for (int i = 0; i <= int(UnaryOp::logical_not); ++i) {
    const UnaryOp op = UnaryOp(i);
    r.add(unary_op_name(op), {1, 1}, [op](const Attrs&) { return make_prim<UnaryPrim>(op); });
  }
  for (int i = 0; i <= int(BinaryOp::logical_or); ++i) {
    const BinaryOp op = BinaryOp(i);
    r.add(binary_op_name(op), {2, 2}, [op](const Attrs&) { return make_prim<BinaryPrim>(op); });
  }
  r.add("where", {3, 3}, [](const Attrs&) { return make_prim<WherePrim>(); });
  r.add("clamp", {1, 1}, [](const Attrs& a) {
    return make_prim<ClampPrim>(attr_double(a, "lo", "clamp"), attr_double(a, "hi", "clamp"));
  });
  r.add("cast", {1, 1}, [](const Attrs& a) { return make_prim<CastPrim>(dtype_from_name(attr_string(a, "dtype", "cast"))); });
}

}  // namespace ember
