// The safetensors file format, independent of ember's Tensor type: a
// validating header parser and an atomic writer. io/safetensors.h binds it
// to tensors.
//
// Layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON
//   {"__metadata__": {"k": "v", ...},
//    "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
// (optionally padded with spaces), then the data buffer that the offsets
// index. Offsets tile the buffer exactly: no gaps, no overlap, no slack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ember {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // the spec's spelling: "F32", "BF16", "I64", "BOOL", ...
  std::vector<int64_t> shape;   // [] is a scalar
  uint64_t begin = 0, end = 0;  // byte range within the data buffer (after the header)
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // sorted by offset, i.e. file order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data buffer: 8 + N
};

// The reference implementation refuses headers above 100 MB; so do we, so
// that a hostile length cannot make us allocate without bound.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Parses and fully validates the file image data[0, size). Throws
// ember::Error("[safetensors] <what>: ...") naming the offending tensor or
// field and its values. `what` is usually the file path. Never reads outside
// [data, data + size).
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size,
                                           const std::string& what);

// Bytes per element of a safetensors dtype string ("F32" -> 4). Throws
// ember::Error for an unknown dtype. Sub-byte types (F4, F6_*) are not
// supported since their tensors are not byte-addressable.
size_t safetensors_dtype_size(const std::string& dtype);
bool is_safetensors_dtype(const std::string& dtype);

struct SafetensorsWriteItem {
  std::string name;
  std::string dtype;  // spec spelling, as in SafetensorsEntry
  std::vector<int64_t> shape;
  const void* data = nullptr;  // little-endian, row-major; may be null when nbytes == 0
  size_t nbytes = 0;           // must equal numel(shape) * dtype size
};

// Writes a safetensors file the way the reference implementation does:
// tensors ordered by descending dtype alignment then name (so every tensor
// is aligned to its element size), compact JSON header padded with spaces to
// a multiple of 8 bytes. The file appears atomically (see atomic_file.h);
// on any error (bad item, duplicate name, full disk) nothing is left behind
// and ember::Error names the path.
void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteItem>& items,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace ember
