// Storage allocation and release through the device allocator.
#include "ember/core/storage.h"

#include "ember/core/current_device.h"

namespace ember {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  // A GPU's allocator takes memory on the current device; CPU allocations (the hot
  // path of eager execution) skip the out-of-line call.
  if (!device.is_cpu()) make_device_current(device);
  data_ = allocator_for(device).allocate(nbytes);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void()> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

std::shared_ptr<Storage> Storage::placeholder(size_t nbytes, Device device, std::string origin) {
  auto s = std::make_shared<Storage>(nullptr, nbytes, device, [] {});
  s->placeholder_ = true;
  s->origin_ = std::move(origin);
  return s;
}

Storage::~Storage() {
  if (release_) release_();
  else allocator_for(device_).deallocate(data_, nbytes_);
}

}  // namespace ember
