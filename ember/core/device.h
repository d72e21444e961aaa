// Device: where a tensor's storage lives ("cpu", "cuda:0"). A plain value type,
// and what this build and machine offer (cuda_built, cuda_device_count).
#pragma once

#include <cstdint>
#include <string>

namespace ember {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::cuda, i}; }
  static Device parse(const std::string& s);  // "cpu", "cuda", "cuda:1"

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;
  bool operator==(const Device&) const = default;
};

// Whether this build has the CUDA backend (CMake's EMBER_WITH_CUDA).
bool cuda_built();
// GPUs this process can use: 0 without the CUDA backend, a driver or a GPU.
int cuda_device_count();

}  // namespace ember
