// What this machine can do, measured in-process: the float32 GEMM rate that
// MFU is quoted against, and the process's peak resident memory.
#pragma once

#include <cstdint>

namespace ember::train {

// Best float32 GFLOP/s of ember's matmul on a 1024^3 product over about
// `seconds` (the GEMM library's rate on this machine with the current OpenMP
// thread count). The best rather than the median: it is a ceiling.
double measure_gemm_peak_gflops(double seconds = 0.4);

// Peak resident set size of this process so far, in MiB.
double peak_rss_mb();

}  // namespace ember::train
