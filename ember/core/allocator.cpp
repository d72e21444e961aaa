// The CPU caching allocator and the device-interface registry.
//
// Training loops allocate the same sizes every step; keeping freed blocks in
// per-size free lists turns those into a map lookup and avoids the page faults
// of fresh large allocations.
#include "ember/core/allocator.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "ember/core/error.h"

namespace ember {
#ifdef EMBER_WITH_CUDA
namespace cuda {
DeviceInterface make_device_interface();  // backend/cuda/cuda_context.cpp
}
#endif
namespace {

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  size_t unit = bytes <= (1u << 20) ? 512 : (64u << 10);
  return (bytes + unit - 1) / unit * unit;
}

class CpuCachingAllocator final : public Allocator {
 public:
  ~CpuCachingAllocator() override { empty_cache(); }

  void* allocate(size_t bytes) override {
    size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    void* ptr = nullptr;
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= size;
      ++stats_.cache_hits;
    } else {
      ptr = std::aligned_alloc(kCpuAlignment, size);
      if (!ptr) {
        release_cache_locked();
        ptr = std::aligned_alloc(kCpuAlignment, size);
      }
      if (!ptr) fail("allocator", "out of memory allocating ", bytes, " bytes on cpu");
    }
    stats_.allocated_bytes += size;
    if (stats_.allocated_bytes > stats_.peak_allocated_bytes) stats_.peak_allocated_bytes = stats_.allocated_bytes;
    return ptr;
  }

  void deallocate(void* ptr, size_t bytes) override {
    if (!ptr) return;
    size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.allocated_bytes -= size;
    if (stats_.cached_bytes + size > kMaxCachedBytes) {
      std::free(ptr);
      return;
    }
    free_[size].push_back(ptr);
    stats_.cached_bytes += size;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cache_locked();
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }

 private:
  void release_cache_locked() {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    stats_.cached_bytes = 0;
  }

  static constexpr size_t kMaxCachedBytes = size_t(4) << 30;
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

struct Registry {
  std::mutex mutex;
  std::map<DeviceType, DeviceInterface> interfaces;
  Registry() {
    // Never destroyed (see registry()).
    static CpuCachingAllocator* cpu_allocator = new CpuCachingAllocator;
    DeviceInterface cpu;
    cpu.allocator = cpu_allocator;
    cpu.copy = [](void* dst, const void* src, size_t bytes, Device, Device) {
      if (bytes) std::memcpy(dst, src, bytes);
    };
    cpu.synchronize = [] {};
    interfaces[DeviceType::cpu] = cpu;
#ifdef EMBER_WITH_CUDA
    interfaces[DeviceType::cuda] = cuda::make_device_interface();
#endif
  }
};

// Deliberately leaked: a tensor in static storage (a global, a cached
// constant) may be destroyed after any function-local static, and its storage
// must still find its allocator then.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

DeviceInterface& device_interface(Device device) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.interfaces.find(device.type);
  if (it == r.interfaces.end())
    fail("device", "no backend for ", device.str(), " in this build (was ember built with CUDA?)");
  return it->second;
}

void register_device_interface(DeviceType type, DeviceInterface iface) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.interfaces[type] = std::move(iface);
}

Allocator& allocator_for(Device device) { return *device_interface(device).allocator; }

}  // namespace ember
