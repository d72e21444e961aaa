// The calling thread's current GPU. CUDA allocates and launches on the thread's
// current device, so everything that allocates or runs kernels for a tensor on
// "cuda:N" (Storage, eval_primitive) makes N current first: a process may hold
// tensors on several GPUs, and a rank of a multi-GPU job may use cuda:<rank>.
#pragma once

#include "ember/core/device.h"

namespace ember {

// No-op for the CPU, and when `device` is already current (one driver query).
void make_device_current(Device device);

}  // namespace ember
