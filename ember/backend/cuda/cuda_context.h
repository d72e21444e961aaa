// The CUDA backend's shared state: error checks that name the op, the stream
// every kernel runs on, the cuBLAS handle, and the device interface (caching
// allocator and copies) that core's registry hands to tensors on "cuda:N".
//
// Kernels run on the legacy default stream: it orders them after one another
// and after host<->device copies without events, and the NCCL communicator
// enqueues its collectives behind it (dist/nccl_communicator.cpp).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "ember/core/allocator.h"

namespace ember::cuda {

// Throw "[op] CUDA error: <text>" (or cuBLAS's status) when rc is not success.
void check(cudaError_t rc, const char* op);
void check_cublas(cublasStatus_t rc, const char* op);
// After a kernel launch: reports a bad launch configuration at once, naming the op.
void check_launch(const char* op);

cudaStream_t stream();
// The cuBLAS handle of the current device, bound to stream().
cublasHandle_t cublas_handle();
// Makes `device` current for this thread (a no-op when it already is).
void set_device(Device device);

// GPUs visible to this process; 0 when there is no GPU or no driver (never throws).
int device_count();

// The interface core registers for DeviceType::cuda (core/allocator.cpp).
DeviceInterface make_device_interface();

}  // namespace ember::cuda
