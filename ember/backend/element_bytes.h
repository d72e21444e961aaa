// Dispatch on an element's size rather than its type, for kernels that only
// move bytes (index_select, gather, triangle masks) on every backend: bytes are
// bytes, so one instantiation per size serves every dtype of that size.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ember/core/error.h"

namespace ember {

// Calls fn.template operator()<E>() with E an unsigned integer of `size` bytes.
template <typename F>
void visit_element_bytes(size_t size, F&& fn) {
  switch (size) {
    case 1: return fn.template operator()<uint8_t>();
    case 2: return fn.template operator()<uint16_t>();
    case 4: return fn.template operator()<uint32_t>();
    case 8: return fn.template operator()<uint64_t>();
    default: fail("index", "unsupported element size ", size);
  }
}

}  // namespace ember
