// Tests for the CPU caching allocator (ember/core/allocator.h): alignment,
// reuse of freed blocks, statistics and the peak, empty_cache, and that tensor
// storage comes from (and goes back to) it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "ember/ember.h"

using namespace ember;

namespace {

Allocator& cpu_alloc() { return allocator_for(Device::cpu()); }

}  // namespace

TEST(Allocator, EveryBlockIs64ByteAligned) {
  std::vector<std::pair<void*, size_t>> blocks;
  for (size_t bytes : {size_t(0), size_t(1), size_t(3), size_t(63), size_t(64), size_t(65), size_t(1000),
                       size_t(4096), size_t(1) << 20, (size_t(1) << 20) + 1, size_t(5) << 20}) {
    void* p = cpu_alloc().allocate(bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kCpuAlignment, 0u) << bytes;
    if (bytes) std::memset(p, 0xab, bytes);  // the whole block is writable
    blocks.push_back({p, bytes});
  }
  for (auto [p, bytes] : blocks) cpu_alloc().deallocate(p, bytes);
  for (DType dt : {DType::u8, DType::bf16, DType::f64})
    for (int64_t n : {1, 7, 1000}) {
      Tensor t = Tensor::empty({n}, dt);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kCpuAlignment, 0u);
    }
}

TEST(Allocator, RepeatedSameSizeAllocationsHitTheCache) {
  const size_t bytes = 3 * 1000 * 1000 + 17;  // a size no other test uses
  void* first = cpu_alloc().allocate(bytes);
  cpu_alloc().deallocate(first, bytes);
  AllocatorStats before = cpu_alloc().stats();
  void* again = cpu_alloc().allocate(bytes);
  AllocatorStats after = cpu_alloc().stats();
  EXPECT_EQ(again, first);  // the same block comes back
  EXPECT_EQ(after.allocations, before.allocations + 1);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
  EXPECT_LT(after.cached_bytes, before.cached_bytes);
  cpu_alloc().deallocate(again, bytes);
  // Sizes that round to the same bucket share blocks too.
  void* a = cpu_alloc().allocate(bytes + 1);
  EXPECT_EQ(a, first);
  cpu_alloc().deallocate(a, bytes + 1);
  // Through tensors: a training-loop shaped sequence of allocations reuses memory.
  const void* data = nullptr;
  uint64_t hits = 0;
  for (int step = 0; step < 5; ++step) {
    uint64_t h0 = cpu_alloc().stats().cache_hits;
    Tensor t = Tensor::empty({777, 1013});
    if (step > 0) {
      EXPECT_EQ(t.raw_data(), data);
      hits += cpu_alloc().stats().cache_hits - h0;
    }
    data = t.raw_data();
  }
  EXPECT_EQ(hits, 4u);
}

TEST(Allocator, StatsTrackLiveBytesAndPeak) {
  AllocatorStats s0 = cpu_alloc().stats();
  cpu_alloc().reset_peak();
  EXPECT_EQ(cpu_alloc().stats().peak_allocated_bytes, s0.allocated_bytes);
  const size_t big = size_t(6) << 20;  // rounds to a whole number of 64 KiB units
  {
    Tensor a = Tensor::empty({int64_t(big)}, DType::u8);
    AllocatorStats s1 = cpu_alloc().stats();
    EXPECT_EQ(s1.allocated_bytes, s0.allocated_bytes + big);
    {
      Tensor b = Tensor::empty({int64_t(big)}, DType::u8);
      EXPECT_EQ(cpu_alloc().stats().allocated_bytes, s0.allocated_bytes + 2 * big);
    }
    AllocatorStats s2 = cpu_alloc().stats();
    EXPECT_EQ(s2.allocated_bytes, s0.allocated_bytes + big);
    EXPECT_GE(s2.peak_allocated_bytes, s0.allocated_bytes + 2 * big);
    EXPECT_GE(s2.cached_bytes, big);  // b's block was kept
  }
  AllocatorStats s3 = cpu_alloc().stats();
  EXPECT_EQ(s3.allocated_bytes, s0.allocated_bytes);
  EXPECT_GE(s3.peak_allocated_bytes, s0.allocated_bytes + 2 * big);
  cpu_alloc().reset_peak();
  EXPECT_EQ(cpu_alloc().stats().peak_allocated_bytes, s3.allocated_bytes);
  // Small sizes are rounded up to 512-byte buckets.
  size_t live = cpu_alloc().stats().allocated_bytes;
  void* p = cpu_alloc().allocate(1);
  EXPECT_EQ(cpu_alloc().stats().allocated_bytes, live + 512);
  cpu_alloc().deallocate(p, 1);
  EXPECT_EQ(cpu_alloc().stats().allocated_bytes, live);
}

TEST(Allocator, EmptyCacheReleasesFreedBlocks) {
  { Tensor t = Tensor::empty({1 << 20}); }
  EXPECT_GT(cpu_alloc().stats().cached_bytes, 0u);
  size_t live = cpu_alloc().stats().allocated_bytes;
  cpu_alloc().empty_cache();
  AllocatorStats s = cpu_alloc().stats();
  EXPECT_EQ(s.cached_bytes, 0u);
  EXPECT_EQ(s.allocated_bytes, live);  // live tensors are untouched
  // After emptying, the next allocation of that size is a miss.
  uint64_t hits = s.cache_hits;
  Tensor t = Tensor::empty({1 << 20});
  EXPECT_EQ(cpu_alloc().stats().cache_hits, hits);
}

TEST(Allocator, ViewsKeepStorageAlive) {
  size_t live = cpu_alloc().stats().allocated_bytes;
  Tensor view;
  {
    Tensor base = reshape(arange(0.0, 1 << 16, 1.0, DType::f32), {256, 256});
    view = slice(base, 0, 10, 20);
  }
  EXPECT_GT(cpu_alloc().stats().allocated_bytes, live);  // the base's storage lives on in the view
  EXPECT_EQ(view.to_vector<float>()[0], 2560.0f);
  view = Tensor();
  EXPECT_EQ(cpu_alloc().stats().allocated_bytes, live);
}

TEST(Allocator, DeviceInterfaceErrors) {
  EXPECT_NO_THROW(device_interface(Device::cpu()));
  // Without a CUDA build there is no backend for cuda devices; with one there is.
  try {
    device_interface(Device::cuda(0));
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[device] no backend for cuda:0", 0), 0u) << e.what();
  }
}
