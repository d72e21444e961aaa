// Storage: a block of device memory shared by a tensor and all of its views.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

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
  // A stand-in for data that does not exist yet: the values a compiled function
  // is traced with (ember/graph). Reading one is an error that names `origin`
  // (the op that would have produced it).
  static std::shared_ptr<Storage> placeholder(size_t nbytes, Device device, std::string origin);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool is_placeholder() const { return placeholder_; }
  const std::string& origin() const { return origin_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void()> release_;  // empty: memory belongs to the allocator
  bool placeholder_ = false;
  std::string origin_;
};

}  // namespace ember
