// What this machine can do, measured in-process: the float32 GEMM rate that
// MFU is quoted against, and the process's peak resident memory.
#pragma once

#include <cstdint>

#include "ember/core/device.h"

namespace ember::train {

// Best float32 GFLOP/s of ember's matmul on a 2048^3 product (at least three
// runs, about `seconds` in all): the GEMM library's rate on this machine with
// the current OpenMP thread count, the figure docs/PERFORMANCE.md calls the
// GEMM peak. The best rather than the median: it is a ceiling.
double measure_gemm_peak_gflops(double seconds = 0.5);
// The same on a device: float32 (true float32, no TF32) products of 4096^3 for a
// GPU, timed between device synchronisations; the CPU figure above for "cpu".
double measure_gemm_peak_gflops(Device device, double seconds = 0.5);

// Memory bandwidth of this machine with the current OpenMP thread count, in GB/s
// (10^9 bytes), over 256 MiB buffers (far beyond any last-level cache): `read`
// sums a buffer (what a decode step does with the weights), `copy` copies one
// buffer to another and counts the bytes read and written (STREAM's Copy). The
// best of at least three passes each: a ceiling, like the GEMM peak. A decode
// step that reads W bytes of weights cannot run faster than max(read, copy) / W.
// Zeros when the two buffers cannot be allocated.
struct MemoryBandwidth {
  double read_gbps = 0, copy_gbps = 0;
  double best() const { return read_gbps > copy_gbps ? read_gbps : copy_gbps; }
};
MemoryBandwidth measure_memory_bandwidth(double seconds = 0.5);

// Model FLOPs utilisation of `flops_per_s` against `peak_gflops`, never above
// 1: a rate above the ceiling means the ceiling was measured on a busy machine
// (another process on the cores), so what was reached becomes the ceiling.
double model_flops_utilisation(double flops_per_s, double& peak_gflops);

// Peak resident set size of this process so far, in MiB.
double peak_rss_mb();

}  // namespace ember::train
