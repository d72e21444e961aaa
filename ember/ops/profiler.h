// A per-primitive time profile of eager execution, like a flat
// torch.profiler table: set EMBER_PROFILE=1 and the process prints, at exit,
// every primitive's total kernel time, call count and share, largest first.
// With EMBER_PROFILE=shapes the rows are split by the first output's shape.
//
// Off by default: then eval_primitive pays one predictable branch per call.
#pragma once

#include <cstdint>
#include <string>

namespace ember::profiler {

bool enabled();
bool by_shape();
// Adds one kernel run of `key` taking `seconds`.
void record(const std::string& key, double seconds);
// The table so far (empty when nothing was recorded).
std::string report();
void reset();

}  // namespace ember::profiler
