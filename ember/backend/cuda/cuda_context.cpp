// The CUDA device interface: a caching allocator over cudaMalloc, the copies
// between host and device, error reporting and the per-device cuBLAS handle.
//
// The allocator keeps freed blocks in a size-ordered pool per device and hands
// out the smallest cached block that fits (and is at most twice the request),
// as PyTorch's caching allocator does, so a training step after the first
// allocates nothing from the driver. Every kernel runs on one stream, so a
// block freed by the host can be reused by the next kernel without events. On
// out-of-memory the pool is released to the driver and the allocation retried.
#include "ember/backend/cuda/cuda_context.h"

#include <map>
#include <mutex>
#include <vector>

#include "ember/core/error.h"

namespace ember::cuda {

void check(cudaError_t rc, const char* op) {
  if (rc != cudaSuccess) {
    cudaGetLastError();  // clear a sticky-free error so the next call starts clean
    fail(op, "CUDA error: ", cudaGetErrorString(rc));
  }
}

void check_cublas(cublasStatus_t rc, const char* op) {
  if (rc != CUBLAS_STATUS_SUCCESS) fail(op, "cuBLAS error: ", cublasGetStatusString(rc));
}

void check_launch(const char* op) { check(cudaGetLastError(), op); }

cudaStream_t stream() { return cudaStreamLegacy; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void set_device(Device device) {
  int current = -1;
  const cudaError_t rc = cudaGetDevice(&current);
  if (rc != cudaSuccess || device.index >= device_count()) {
    cudaGetLastError();
    fail("cuda", device.str(), " is not available: this process sees ", device_count(), " GPUs",
         rc != cudaSuccess ? str_cat(" (", cudaGetErrorString(rc), ")") : std::string(),
         "; use --device cpu, or check the driver and CUDA_VISIBLE_DEVICES");
  }
  if (current != device.index) check(cudaSetDevice(device.index), "cuda");
}

cublasHandle_t cublas_handle() {
  static std::mutex mutex;
  static std::vector<cublasHandle_t> handles;
  int dev = 0;
  check(cudaGetDevice(&dev), "cublas");
  std::lock_guard<std::mutex> lock(mutex);
  if (int(handles.size()) <= dev) handles.resize(dev + 1, nullptr);
  if (!handles[dev]) {
    check_cublas(cublasCreate(&handles[dev]), "cublas");
    check_cublas(cublasSetStream(handles[dev], stream()), "cublas");
    // bf16/f16 products accumulate in float and round once, as on the CPU: no
    // reduced-precision reductions (cuBLAS may otherwise split K and round partial sums).
    check_cublas(cublasSetMathMode(handles[dev], cublasMath_t(CUBLAS_DEFAULT_MATH |
                                                              CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
                 "cublas");
  }
  return handles[dev];
}

namespace {

// Requests are rounded up to 512 bytes so that blocks of nearby sizes are shared.
constexpr size_t kRound = 512;

class CudaCachingAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    size_t size = (std::max<size_t>(bytes, 1) + kRound - 1) / kRound * kRound;
    int dev = 0;
    check(cudaGetDevice(&dev), "cuda allocator");
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    Pool& pool = pool_for(dev);
    auto it = pool.lower_bound(size);
    if (it != pool.end() && it->first <= 2 * size) {
      void* p = it->second;
      stats_.cached_bytes -= it->first;
      sizes_[p] = it->first;
      pool.erase(it);
      ++stats_.cache_hits;
      note_allocated(sizes_[p]);
      return p;
    }
    void* p = nullptr;
    cudaError_t rc = cudaMalloc(&p, size);
    if (rc == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_pools();
      rc = cudaMalloc(&p, size);
    }
    if (rc != cudaSuccess) {
      cudaGetLastError();
      fail("cuda allocator", "cannot allocate ", size, " bytes on cuda:", dev, " (", cudaGetErrorString(rc),
           "; ", stats_.allocated_bytes, " bytes in use by tensors)");
    }
    sizes_[p] = size;
    devices_[p] = dev;
    note_allocated(size);
    return p;
  }

  void deallocate(void* ptr, size_t) override {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    size_t size = sizes_.at(ptr);
    sizes_.erase(ptr);
    stats_.allocated_bytes -= size;
    stats_.cached_bytes += size;
    pool_for(devices_.at(ptr)).emplace(size, ptr);
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    release_pools();
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
  using Pool = std::multimap<size_t, void*>;
  Pool& pool_for(int dev) {
    if (int(pools_.size()) <= dev) pools_.resize(dev + 1);
    return pools_[dev];
  }
  void note_allocated(size_t size) {
    stats_.allocated_bytes += size;
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  }
  // Frees every cached block (the caller holds the mutex). Pending kernels may
  // still use a block a tensor freed a moment ago: synchronise first.
  void release_pools() {
    cudaDeviceSynchronize();
    for (Pool& pool : pools_) {
      for (auto& [size, p] : pool) {
        cudaFree(p);
        devices_.erase(p);
      }
      pool.clear();
    }
    stats_.cached_bytes = 0;
  }

  mutable std::mutex mutex_;
  std::vector<Pool> pools_;
  std::map<void*, size_t> sizes_;  // live blocks
  std::map<void*, int> devices_;   // every block the driver gave us
  AllocatorStats stats_;
};

}  // namespace

DeviceInterface make_device_interface() {
  DeviceInterface iface;
  // Leaked on purpose, like the CPU allocator: storages in static objects may be
  // freed after every function-local static is gone.
  iface.allocator = new CudaCachingAllocator;
  iface.copy = [](void* dst, const void* src, size_t bytes, Device dst_dev, Device src_dev) {
    if (!bytes) return;
    if (dst_dev.is_cuda()) set_device(dst_dev);
    else if (src_dev.is_cuda()) set_device(src_dev);
    cudaMemcpyKind kind = cudaMemcpyDefault;  // unified addressing tells the directions apart
    if (dst_dev.is_cuda() && src_dev.is_cuda() && dst_dev.index != src_dev.index) {
      // Between GPUs: ordered after the pending work of both devices.
      check(cudaMemcpyPeer(dst, dst_dev.index, src, src_dev.index, bytes), "to_device");
    } else if (dst_dev.is_cuda() && src_dev.is_cuda()) {
      check(cudaMemcpyAsync(dst, src, bytes, kind, stream()), "to_device");
    } else {
      // To or from pageable host memory: cudaMemcpy waits for the work queued before it.
      check(cudaMemcpy(dst, src, bytes, kind), "to_device");
    }
  };
  iface.synchronize = [] { check(cudaDeviceSynchronize(), "cuda synchronize"); };
  return iface;
}

}  // namespace ember::cuda
