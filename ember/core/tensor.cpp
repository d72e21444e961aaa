// Tensor handle basics: creation, host read-back, autograd accessors.
#include "ember/core/tensor.h"

#include <cstring>

#include "ember/core/error.h"

namespace ember {

TensorImpl& Tensor::impl() const {
  if (!impl_) fail("tensor", "use of an undefined tensor");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    EMBER_CHECK(d >= 0, "empty", "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>(size_t(ember::numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

Tensor Tensor::unallocated(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  return Tensor(std::move(impl));
}

int64_t Tensor::shape(int64_t axis) const {
  if (ndim() == 0) fail("shape", "a 0-d tensor has no axis ", axis);
  int a = normalize_axis(axis, ndim(), "shape");
  return impl().shape[size_t(a)];
}

bool Tensor::is_contiguous() const {
  const TensorImpl& t = impl();
  int64_t expected = 1;
  for (size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] == 1) continue;
    if (t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  const TensorImpl& t = impl();
  if (!t.storage) fail("tensor", "tensor of shape ", shape_str(t.shape), " has no data");
  if (t.storage->is_placeholder())
    fail("compile", "the traced function reads the values of ", t.storage->origin(), " ", shape_str(t.shape),
         "; values do not exist while tracing, so data-dependent control flow cannot be compiled "
         "(compile with fullgraph = false to run such a function eagerly)");
  return static_cast<char*>(t.storage->data()) + t.offset * int64_t(dtype_size(t.dtype));
}

void Tensor::check_host_access(DType wanted) const {
  if (dtype() != wanted)
    fail("tensor", "data<", dtype_name(wanted), ">() called on a ", dtype_name(dtype()), " tensor");
  if (!device().is_cpu()) fail("tensor", "host access to a tensor on ", device().str(), "; copy it to cpu first");
}

namespace {

// Bytes from element 0 of the view to one past its furthest element.
size_t view_span_bytes(const TensorImpl& t) {
  if (ember::numel(t.shape) == 0) return 0;
  int64_t last = 0;
  for (size_t i = 0; i < t.shape.size(); ++i) last += (t.shape[i] - 1) * t.strides[i];
  return size_t(last + 1) * dtype_size(t.dtype);
}

template <typename Dst>
struct Converter {
  template <typename Src>
  static Dst convert(Src v) {
    if constexpr (std::is_same_v<Src, bfloat16> || std::is_same_v<Src, float16>) return Dst(float(v));
    else if constexpr (std::is_same_v<Dst, bfloat16> || std::is_same_v<Dst, float16>) return Dst(float(v));
    else return static_cast<Dst>(v);
  }
};

}  // namespace

template <typename T>
std::vector<T> Tensor::to_vector() const {
  const TensorImpl& t = impl();
  std::vector<T> out(static_cast<size_t>(numel()));
  if (out.empty()) return out;
  // Bring the bytes the view covers to the host (a no-op pointer on the CPU).
  size_t span = view_span_bytes(t);
  std::vector<char> host;
  const char* base = static_cast<const char*>(raw_data());
  if (!t.device.is_cpu()) {
    host.resize(span);
    device_interface(t.device).copy(host.data(), base, span, Device::cpu(), t.device);
    base = host.data();
  }
  visit_dtype(t.dtype, "to_vector", [&]<typename S>() {
    const S* src = reinterpret_cast<const S*>(base);
    size_t nd = t.shape.size();
    std::vector<int64_t> idx(nd, 0);
    int64_t off = 0;
    for (size_t n = 0; n < out.size(); ++n) {
      out[n] = Converter<T>::convert(src[off]);
      for (size_t d = nd; d-- > 0;) {
        if (++idx[d] < t.shape[d]) {
          off += t.strides[d];
          break;
        }
        off -= (t.shape[d] - 1) * t.strides[d];
        idx[d] = 0;
      }
    }
  });
  return out;
}

template <typename T>
T Tensor::item() const {
  if (numel() != 1) fail("item", "expects a tensor with one element, got shape ", shape_str(shape()));
  return to_vector<T>()[0];
}

#define EMBER_INSTANTIATE(T)                            \
  template std::vector<T> Tensor::to_vector<T>() const; \
  template T Tensor::item<T>() const;
EMBER_INSTANTIATE(float)
EMBER_INSTANTIATE(double)
EMBER_INSTANTIATE(bfloat16)
EMBER_INSTANTIATE(float16)
EMBER_INSTANTIATE(int32_t)
EMBER_INSTANTIATE(int64_t)
EMBER_INSTANTIATE(uint8_t)
EMBER_INSTANTIATE(bool)
#undef EMBER_INSTANTIATE

Tensor& Tensor::requires_grad_(bool on) {
  TensorImpl& t = impl();
  if (t.grad_fn) fail("requires_grad_", "can only be set on leaf tensors (this one was computed by an op)");
  if (on && !is_floating(t.dtype))
    fail("requires_grad_", "only floating-point tensors can require gradients, got ", dtype_name(t.dtype));
  t.requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) const {
  if (g.defined() && g.shape() != shape())
    fail("set_grad", "gradient shape ", shape_str(g.shape()), " does not match tensor shape ", shape_str(shape()));
  impl().grad = g.impl_ptr();
}

void Tensor::retain_grad() const { impl().retains_grad = true; }

Tensor Tensor::detach() const {
  const TensorImpl& t = impl();
  auto d = std::make_shared<TensorImpl>();
  d->storage = t.storage;
  d->shape = t.shape;
  d->strides = t.strides;
  d->offset = t.offset;
  d->dtype = t.dtype;
  d->device = t.device;
  return Tensor(std::move(d));
}

Tensor tensor(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  if (int64_t(values.size()) != ember::numel(shape))
    fail("tensor", values.size(), " values do not fill shape ", shape_str(shape));
  Tensor host = Tensor::empty(shape, dtype, Device::cpu());
  visit_dtype(dtype, "tensor", [&]<typename T>() {
    T* p = static_cast<T*>(host.raw_data());
    for (size_t i = 0; i < values.size(); ++i) p[i] = Converter<T>::convert(values[i]);
  });
  if (device.is_cpu()) return host;
  Tensor out = Tensor::empty(shape, dtype, device);
  copy_bytes(out, host);
  return out;
}

Tensor tensor_i64(const std::vector<int64_t>& values, const Shape& shape, Device device) {
  if (int64_t(values.size()) != ember::numel(shape))
    fail("tensor", values.size(), " values do not fill shape ", shape_str(shape));
  Tensor host = Tensor::empty(shape, DType::i64, Device::cpu());
  if (!values.empty()) std::memcpy(host.raw_data(), values.data(), values.size() * sizeof(int64_t));
  if (device.is_cpu()) return host;
  Tensor out = Tensor::empty(shape, DType::i64, device);
  copy_bytes(out, host);
  return out;
}

Tensor scalar(double value, DType dtype, Device device) { return tensor({value}, {}, dtype, device); }

void copy_bytes(const Tensor& dst, const Tensor& src) {
  // Empty tensors have nothing to copy, whatever strides their views carry.
  if (dst.numel() == 0 && src.numel() == 0 && dst.dtype() == src.dtype()) return;
  if (!dst.is_contiguous() || !src.is_contiguous() || dst.nbytes() != src.nbytes())
    fail("copy", "copy_bytes needs contiguous tensors of equal size, got ", shape_str(dst.shape()), " ",
         dtype_name(dst.dtype()), " and ", shape_str(src.shape()), " ", dtype_name(src.dtype()));
  Device through = dst.device().is_cpu() ? src.device() : dst.device();
  device_interface(through).copy(dst.raw_data(), src.raw_data(), src.nbytes(), dst.device(), src.device());
}

}  // namespace ember
