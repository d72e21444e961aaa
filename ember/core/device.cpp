// Device parsing and printing, and what the build and machine offer.
#include "ember/core/device.h"
#include "ember/core/current_device.h"

#include "ember/core/error.h"

namespace ember {
#ifdef EMBER_WITH_CUDA
namespace cuda {
int device_count();          // backend/cuda/cuda_context.cpp
void set_device(Device device);
}  // namespace cuda
bool cuda_built() { return true; }
int cuda_device_count() { return cuda::device_count(); }
void make_device_current(Device device) {
  if (device.is_cuda()) cuda::set_device(device);
}
#else
bool cuda_built() { return false; }
int cuda_device_count() { return 0; }
void make_device_current(Device) {}
#endif

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    std::string idx = s.substr(5);
    bool digits = !idx.empty() && idx.size() < 4 && idx.find_first_not_of("0123456789") == std::string::npos;
    if (digits) return cuda(std::stoi(idx));
  }
  fail("device", "cannot parse device '", s, "' (expected cpu, cuda or cuda:N)");
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

}  // namespace ember
