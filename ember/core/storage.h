// Storage: a block of device memory shared by a tensor and all of its views.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "ember/core/allocator.h"
#include "ember/core/device.h"

namespace ember {

class Storage {
 public:
  // Allocates `nbytes` from the device's caching allocator.
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (a memory-mapped file); `release` runs when the
  // last tensor using it dies.
  Storage(void* data, size_t nbytes, Device device, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void()> release_;  // empty: memory belongs to the allocator
};

}  // namespace ember
