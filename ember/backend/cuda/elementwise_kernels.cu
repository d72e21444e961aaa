// CUDA elementwise kernels: one grid-stride loop per op and dtype over the
// output's elements, operands addressed through an Indexer (broadcasting and
// any strides). The scalar math is backend/elementwise_math.h, the same code
// the CPU kernels run, here with CUDA's device math library.
#include "ember/backend/cuda/elementwise_kernels.h"

#include "ember/backend/cuda/device_math.cuh"
#include "ember/backend/cuda/kernel_utils.cuh"
#include "ember/backend/elementwise_math.h"

namespace ember::cuda {
namespace {

template <UnaryOp OP, typename T>
void unary_typed(const Tensor& in, Tensor& out) {
  using C = acc_t<T>;
  auto ix = make_indexer<2>(out.shape(), {&out, &in}, unary_op_name(OP));
  const T* src = data_of<T>(in);
  T* dst = data_of<T>(out);
  for_each_index(out.numel(), unary_op_name(OP), [=] __device__(int64_t i) {
    int64_t off[2];
    ix.offsets(i, off);
    store(dst + off[0], elementwise::apply_unary<OP, DeviceMath, C>(load(src + off[1])));
  });
}

template <typename T>
void unary_dispatch(UnaryOp op, const Tensor& in, Tensor& out) {
  switch (op) {
#define EMBER_CASE(K) \
  case UnaryOp::K: return unary_typed<UnaryOp::K, T>(in, out);
    EMBER_UNARY_MATH_OPS(EMBER_CASE) EMBER_CASE(logical_not)
#undef EMBER_CASE
  }
}

template <BinaryOp OP, typename T, typename O>
void binary_typed(const Tensor& a, const Tensor& b, Tensor& out) {
  using C = acc_t<T>;
  auto ix = make_indexer<3>(out.shape(), {&out, &a, &b}, binary_op_name(OP));
  const T* pa = data_of<T>(a);
  const T* pb = data_of<T>(b);
  O* po = data_of<O>(out);
  for_each_index(out.numel(), binary_op_name(OP), [=] __device__(int64_t i) {
    int64_t off[3];
    ix.offsets(i, off);
    store(po + off[0], elementwise::apply_binary<OP, DeviceMath, C>(load(pa + off[1]), load(pb + off[2])));
  });
}

template <typename T>
void binary_dispatch(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  switch (op) {
#define EMBER_ARITH(K) \
  case BinaryOp::K: return binary_typed<BinaryOp::K, T, T>(a, b, out);
#define EMBER_CMP(K) \
  case BinaryOp::K: return binary_typed<BinaryOp::K, T, bool>(a, b, out);
    EMBER_BINARY_ARITH_OPS(EMBER_ARITH) EMBER_BINARY_COMPARE_OPS(EMBER_CMP)
#undef EMBER_ARITH
#undef EMBER_CMP
  }
}

template <UnaryOp OP, typename T>
void activation_grad_typed(const Tensor& x, const Tensor& g, Tensor& out) {
  using C = acc_t<T>;
  auto ix = make_indexer<3>(out.shape(), {&out, &x, &g}, "activation_grad");
  const T* px = data_of<T>(x);
  const T* pg = data_of<T>(g);
  T* po = data_of<T>(out);
  for_each_index(out.numel(), "activation_grad", [=] __device__(int64_t i) {
    int64_t off[3];
    ix.offsets(i, off);
    store(po + off[0], load(pg + off[2]) * elementwise::activation_derivative<OP, DeviceMath, C>(load(px + off[1])));
  });
}

// nvcc allows no __device__ lambda inside a generic lambda, nor one whose first
// capture sits in an `if constexpr` branch: each kernel below is a named function
// template, which the dtype visitors' generic lambdas call.
template <typename T>
void logical_not_typed(const Tensor& in, Tensor& out) {
  auto ix = make_indexer<2>(out.shape(), {&out, &in}, "logical_not");
  const T* src = data_of<T>(in);
  bool* dst = data_of<bool>(out);
  for_each_index(out.numel(), "logical_not", [=] __device__(int64_t i) {
    int64_t off[2];
    ix.offsets(i, off);
    dst[off[0]] = load(src + off[1]) == acc_t<T>(0);
  });
}

template <typename T>
void where_typed(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  auto ix = make_indexer<4>(out.shape(), {&out, &cond, &a, &b}, "where");
  const bool* pc = data_of<bool>(cond);
  const T* pa = data_of<T>(a);
  const T* pb = data_of<T>(b);
  T* po = data_of<T>(out);
  for_each_index(out.numel(), "where", [=] __device__(int64_t i) {
    int64_t off[4];
    ix.offsets(i, off);
    po[off[0]] = pc[off[1]] ? pa[off[2]] : pb[off[3]];
  });
}

template <typename T>
void clamp_typed(const Tensor& in, double lo, double hi, Tensor& out) {
  using C = acc_t<T>;
  C l = elementwise::clamp_bound<C>(lo, true), h = elementwise::clamp_bound<C>(hi, false);
  auto ix = make_indexer<2>(out.shape(), {&out, &in}, "clamp");
  const T* src = data_of<T>(in);
  T* dst = data_of<T>(out);
  for_each_index(out.numel(), "clamp", [=] __device__(int64_t i) {
    int64_t off[2];
    ix.offsets(i, off);
    C v = load(src + off[1]);
    store(dst + off[0], v < l ? l : (v > h ? h : v));  // NaN fails both and passes through
  });
}

template <typename S, typename D>
__device__ __forceinline__ void convert_element(D* dst, const S* src) {
  if constexpr (std::is_same_v<S, D>) *dst = *src;
  else if constexpr (std::is_same_v<D, bool>) *dst = load(src) != acc_t<S>(0);
  // Floats become integers through int64, as on the CPU: out-of-range values wrap.
  else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<acc_t<S>>) *dst = D(int64_t(load(src)));
  else store(dst, acc_t<D>(load(src)));
}

template <typename S, typename D>
void copy_cast_typed(const Tensor& src, Tensor& out) {
  auto ix = make_indexer<2>(out.shape(), {&out, &src}, "copy");
  const S* ps = data_of<S>(src);
  D* pd = data_of<D>(out);
  for_each_index(out.numel(), "copy", [=] __device__(int64_t i) {
    int64_t off[2];
    ix.offsets(i, off);
    convert_element<S, D>(pd + off[0], ps + off[1]);
  });
}

template <typename T>
void fill_typed(Tensor& out, double value) {
  T* p = data_of<T>(out);
  acc_t<T> v = std::is_same_v<T, bool> ? acc_t<T>(value != 0) : acc_t<T>(value);
  for_each_index(out.numel(), "fill", [=] __device__(int64_t i) { store(p + i, v); });
}

}  // namespace

void unary(UnaryOp op, const Tensor& in, Tensor& out) {
  if (op == UnaryOp::logical_not) {
    // Reads any dtype, writes bool: x == 0.
    visit_device_dtype(in.dtype(), "logical_not", [&]<typename T>() { logical_not_typed<T>(in, out); });
    return;
  }
  visit_device_dtype(in.dtype(), unary_op_name(op), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) fail(unary_op_name(op), "is not defined for bool tensors");
    else unary_dispatch<T>(op, in, out);
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  visit_device_dtype(a.dtype(), binary_op_name(op), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      // bool operands are compared as their 0/1 bytes.
      if (!is_comparison(op)) fail(binary_op_name(op), "is not defined for bool tensors");
      binary_dispatch<uint8_t>(op, a, b, out);
    } else {
      binary_dispatch<T>(op, a, b, out);
    }
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  visit_device_dtype(out.dtype(), "where", [&]<typename T>() { where_typed<T>(cond, a, b, out); });
}

void clamp(const Tensor& in, double lo, double hi, Tensor& out) {
  visit_device_dtype(in.dtype(), "clamp", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) fail("clamp", "is not defined for bool tensors");
    else clamp_typed<T>(in, lo, hi, out);
  });
}

void activation_grad(UnaryOp op, const Tensor& x, const Tensor& g, Tensor& out) {
  visit_device_floating(x.dtype(), "activation_grad", [&]<typename T>() {
    switch (op) {
      case UnaryOp::gelu_tanh: return activation_grad_typed<UnaryOp::gelu_tanh, T>(x, g, out);
      case UnaryOp::gelu: return activation_grad_typed<UnaryOp::gelu, T>(x, g, out);
      case UnaryOp::silu: return activation_grad_typed<UnaryOp::silu, T>(x, g, out);
      default: fail("activation_grad", "no fused derivative for ", unary_op_name(op));
    }
  });
}

void copy_cast(const Tensor& src, Tensor& out) {
  visit_device_dtype(src.dtype(), "copy", [&]<typename S>() {
    visit_device_dtype(out.dtype(), "copy", [&]<typename D>() { copy_cast_typed<S, D>(src, out); });
  });
}

void fill(Tensor& out, double value) {
  visit_device_dtype(out.dtype(), "fill", [&]<typename T>() { fill_typed<T>(out, value); });
}

}  // namespace ember::cuda
