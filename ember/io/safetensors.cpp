// Binds the safetensors format layer (safetensors_format.h) to ember tensors.
#include "ember/io/safetensors.h"

#include <cstring>
#include <memory>

#include "ember/io/mapped_file.h"
#include "ember/io/safetensors_format.h"
#include "ember/ops/elementwise.h"

namespace ember {

std::string safetensors_dtype_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
    case DType::b8: return "BOOL";
  }
  fail("safetensors", "unknown dtype ", int(dtype));
}

DType dtype_from_safetensors(const std::string& dtype, const std::string& where) {
  static const std::map<std::string, DType> table = {
      {"F32", DType::f32}, {"F64", DType::f64}, {"BF16", DType::bf16}, {"F16", DType::f16},
      {"I32", DType::i32}, {"I64", DType::i64}, {"U8", DType::u8},     {"BOOL", DType::b8}};
  auto it = table.find(dtype);
  if (it == table.end())
    fail("safetensors", where, ": dtype ", dtype,
         " is not supported by ember (supported: F32, F64, BF16, F16, I32, I64, U8, BOOL)");
  return it->second;
}

SafetensorsFile load_safetensors(const std::string& path, LoadMode mode, Device device) {
  auto file = std::make_shared<MappedFile>(path);
  SafetensorsHeader header = parse_safetensors_header(file->data(), file->size(), path);
  SafetensorsFile out;
  out.metadata = header.metadata;
  for (const SafetensorsEntry& e : header.entries) {
    DType dt = dtype_from_safetensors(e.dtype, path + ": tensor '" + e.name + "'");
    const uint8_t* src = file->data() + header.data_start + e.begin;
    size_t nbytes = size_t(e.end - e.begin);
    Tensor t;
    bool aligned = reinterpret_cast<uintptr_t>(src) % dtype_size(dt) == 0;
    if (mode == LoadMode::mmap && device.is_cpu() && aligned) {
      auto impl = std::make_shared<TensorImpl>();
      impl->shape = e.shape;
      impl->strides = contiguous_strides(e.shape);
      impl->dtype = dt;
      impl->device = device;
      // The storage keeps the mapping alive for as long as any tensor uses it.
      impl->storage = std::make_shared<Storage>(const_cast<uint8_t*>(src), nbytes, device, [file] {});
      t = Tensor(std::move(impl));
    } else {
      Tensor host = Tensor::empty(e.shape, dt, Device::cpu());
      if (nbytes) std::memcpy(host.raw_data(), src, nbytes);
      t = device.is_cpu() ? host : to_device(host, device);
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> host;  // keeps host copies alive until written
  std::vector<SafetensorsWriteItem> items;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) fail("safetensors", path, ": tensor '", name, "' is undefined");
    Tensor h = contiguous(to_device(t.detach(), Device::cpu()));
    host.push_back(h);
    items.push_back({name, safetensors_dtype_of(h.dtype()), h.shape(), h.numel() ? h.raw_data() : nullptr, h.nbytes()});
  }
  write_safetensors(path, items, metadata);
}

}  // namespace ember
