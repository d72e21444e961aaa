// Loading and saving named tensors as safetensors files (the checkpoint and
// weight format of ember, compatible with Hugging Face's `safetensors`).
#pragma once

#include <map>
#include <string>

#include "ember/core/tensor.h"

namespace ember {

using TensorMap = std::map<std::string, Tensor>;

struct SafetensorsFile {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
};

enum class LoadMode {
  copy,  // tensors own writable memory from the allocator (the default)
  mmap,  // tensors point into a read-only mapping of the file (zero copy; never write into them)
};

// Reads and validates a safetensors file. Errors name the file and the
// offending tensor or field; unsupported dtypes (e.g. I8, F8_*) are reported.
SafetensorsFile load_safetensors(const std::string& path, LoadMode mode = LoadMode::copy,
                                 Device device = Device::cpu());
// Writes atomically (temporary file, fsync, rename). Tensors may be on any
// device and non-contiguous; they are copied to the host in row-major order.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

std::string safetensors_dtype_of(DType dtype);  // "F32", "BF16", ...
DType dtype_from_safetensors(const std::string& dtype, const std::string& where);

}  // namespace ember
