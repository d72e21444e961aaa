// How a fuzz target (tests/fuzz/<name>_fuzz.cpp) declares its entry point, so
// one source serves two builds:
//   - the libFuzzer build (EMBER_FUZZ=ON, clang): EMBER_FUZZ_TARGET(name)
//     defines LLVMFuzzerTestOneInput, and libFuzzer's main drives it;
//   - the regression replay in the normal build (EMBER_FUZZ_REPLAY defined):
//     every target is linked into one binary, tests/fuzz/replay_main.cpp,
//     each registered under its name, and CTest feeds it the target's corpus
//     (tests/fuzz/corpus/<name>/) so inputs found by fuzzing stay tested.
// A target reports a broken promise with std::abort() (both builds catch it).
#pragma once

#include <cstddef>
#include <cstdint>

#ifdef EMBER_FUZZ_REPLAY

namespace ember::fuzz {
using EntryPoint = int (*)(const uint8_t* data, size_t size);
// Adds a target to the replay binary's table; returns true (for a static initializer).
bool register_target(const char* name, EntryPoint entry);
}  // namespace ember::fuzz

#define EMBER_FUZZ_TARGET(name)                                                                    \
  static int ember_fuzz_##name(const uint8_t* data, size_t size);                                  \
  [[maybe_unused]] static const bool ember_fuzz_registered_##name =                                \
      ember::fuzz::register_target(#name, ember_fuzz_##name);                                      \
  static int ember_fuzz_##name(const uint8_t* data, size_t size)

#else

#define EMBER_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)

#endif
