// libFuzzer target for parse_safetensors_header: any byte string must either
// parse into a header whose entries tile the data buffer, or throw
// ember::Error; never crash, overread, overflow, or throw anything else.
//
// Built and run by scripts/fuzz.sh (libFuzzer, clang) with the dictionary
// tests/fuzz/safetensors.dict and the seed corpus tests/fuzz/corpus/safetensors/;
// the corpus is replayed by CTest in the normal build (fuzz_target.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ember/core/error.h"
#include "ember/io/safetensors_format.h"
#include "fuzz/fuzz_target.h"

namespace {

// Checks what a successful parse promises; abort() makes libFuzzer report it.
void check_invariants(const ember::SafetensorsHeader& h, size_t size) {
  if (h.data_start > size) std::abort();
  uint64_t pos = 0;
  for (const ember::SafetensorsEntry& e : h.entries) {
    if (e.begin != pos || e.end < e.begin) std::abort();
    uint64_t nbytes = ember::safetensors_dtype_size(e.dtype);
    for (int64_t d : e.shape) {
      if (d < 0) std::abort();
      nbytes *= static_cast<uint64_t>(d);  // wraps only if the parser missed an overflow...
    }
    if (e.end - e.begin != nbytes) std::abort();  // ...which this then catches
    pos = e.end;
  }
  if (h.data_start + pos != size) std::abort();
}

void parse(const uint8_t* data, size_t size) {
  try {
    ember::SafetensorsHeader h = ember::parse_safetensors_header(data, size, "fuzz");
    check_invariants(h, size);
  } catch (const ember::Error&) {
    // Rejecting bad input is the expected outcome.
  }
}

}  // namespace

EMBER_FUZZ_TARGET(safetensors) {
  // 1. The input as a whole file.
  parse(data, size);

  // 2. The input as header text after a correct length prefix, followed by a
  //    data buffer whose size the first byte chooses. Random inputs rarely
  //    get the 8-byte length right, so this reaches the JSON validation.
  if (size >= 1) {
    size_t header = size - 1;
    size_t buffer = data[0];
    std::vector<uint8_t> file(8 + header + buffer, 0);
    for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(uint64_t{header} >> (8 * i));
    std::memcpy(file.data() + 8, data + 1, header);
    // The vector is exactly the file's size, so ASan flags any read past it.
    parse(file.data(), file.size());
  }
  return 0;
}
