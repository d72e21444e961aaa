// Tensor: a shared handle to a strided view of device storage, plus the autograd
// metadata that links it to the primitive that produced it.
//
// Copying a Tensor copies the handle (like PyTorch's Python tensors): both refer
// to the same data. Ops are free functions in ember/ops (ember::add, ember::matmul);
// this class only holds data, shape and gradient bookkeeping.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/core/device.h"
#include "ember/core/dtype.h"
#include "ember/core/shape.h"
#include "ember/core/storage.h"

namespace ember {

class Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;  // null for a tensor that has shape but no data yet
  Shape shape;
  Strides strides;      // in elements
  int64_t offset = 0;   // in elements, into storage
  DType dtype = DType::f32;
  Device device;

  // Autograd: a leaf with requires_grad accumulates into `grad`; a non-leaf
  // remembers the node (primitive + inputs) that made it.
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<Node> grad_fn;
  int output_index = 0;
  std::shared_ptr<TensorImpl> grad;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A new contiguous tensor with uninitialised data.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  // A tensor with shape and dtype but no storage (filled in by a view primitive).
  static Tensor unallocated(const Shape& shape, DType dtype, Device device);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t shape(int64_t axis) const;  // negative axes count from the end
  const Strides& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t ndim() const { return int64_t(impl().shape.size()); }
  int64_t numel() const { return ember::numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  size_t itemsize() const { return dtype_size(impl().dtype); }
  size_t nbytes() const { return size_t(numel()) * itemsize(); }
  bool is_contiguous() const;
  bool has_storage() const { return impl_ && impl_->storage != nullptr; }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Address of element 0 (storage base + offset). For kernels; may be a device pointer.
  void* raw_data() const;
  // Typed host pointer to element 0; checks the dtype and that the tensor is on the CPU.
  template <typename T> T* data() const {
    check_host_access(dtype_of<T>::value);
    return static_cast<T*>(raw_data());
  }

  // Host read-back (copies from the device, converts to T, follows strides).
  template <typename T> std::vector<T> to_vector() const;
  template <typename T = double> T item() const;

  // Autograd.
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& requires_grad_(bool on = true);  // only on leaves
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  void retain_grad() const;  // keep .grad on a non-leaf after backward
  // Same data, no autograd history.
  Tensor detach() const;
  // Reverse-mode autodiff from this tensor (see ember/autograd/engine.h).
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false, bool create_graph = false) const;

  std::string str() const;  // shape, dtype, device and (abbreviated) values

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  void check_host_access(DType wanted) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Creation from host values (converted to `dtype`).
Tensor tensor(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32,
              Device device = Device::cpu());
Tensor tensor_i64(const std::vector<int64_t>& values, const Shape& shape, Device device = Device::cpu());
Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());

// Copies raw bytes between tensors' storages through the device interface
// (both contiguous, same byte size).
void copy_bytes(const Tensor& dst, const Tensor& src);

}  // namespace ember
