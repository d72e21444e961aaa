// Per-device memory: the Allocator interface, the CPU caching allocator, and the
// device interface (copies between host and device) that kernels and tensors use.
//
// Every tensor's storage comes from its device's allocator, so no op ever calls
// malloc or assumes a host pointer; a CUDA backend registers its own allocator
// and copy functions and the op code stays the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "ember/core/device.h"

namespace ember {

struct AllocatorStats {
  size_t allocated_bytes = 0;       // held by live storages now
  size_t peak_allocated_bytes = 0;  // high-water mark since the last reset
  size_t cached_bytes = 0;          // freed blocks kept for reuse
  uint64_t allocations = 0;         // calls to allocate
  uint64_t cache_hits = 0;          // allocations served from the cache
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual void empty_cache() {}
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
};

// The narrow per-device interface (after ggml-backend): memory and copies.
struct DeviceInterface {
  Allocator* allocator = nullptr;
  // Copies bytes; direction is given by the two devices.
  std::function<void(void* dst, const void* src, size_t bytes, Device dst_dev, Device src_dev)> copy;
  std::function<void()> synchronize;
};

// The interface for a device; throws ember::Error when the device has no backend
// (for example cuda in a build without CUDA).
DeviceInterface& device_interface(Device device);
void register_device_interface(DeviceType type, DeviceInterface iface);
Allocator& allocator_for(Device device);

// Alignment of every CPU allocation: one cache line, and enough for AVX-512 loads.
constexpr size_t kCpuAlignment = 64;

}  // namespace ember
