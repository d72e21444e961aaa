// Weight-only formats of Linear weights for inference: the formats, a
// non-owning view the kernels read (LinearWeight: f32 | int8 | int4 | f16), an
// owning quantized matrix, quantizing a float matrix, and dequantizing (the
// reference every kernel is tested against).
//
// A weight W is [rows, cols] = [out, in], PyTorch's Linear layout, so the dot
// products of a forward pass run along a row. The schemes (symmetric: a zero
// weight stays exactly zero, and no zero-point has to be stored or subtracted):
//   int8  one float32 scale per row:  s = max|W[r, :]| / 127,
//         q = round(W / s) in [-127, 127], stored as int8 [rows, cols].
//   int4  one float32 scale per group of G consecutive columns of a row
//         (G = 32, 64 or 128; the last group of a row may be shorter):
//         s = max|W[r, g]| / 7, q = round(W / s) in [-7, 7], stored as the
//         nibble q + 8, two per byte, the even column in the low nibble:
//         [rows, ceil(cols / 2)] uint8 (an odd row's last high nibble is 8).
//         Scales are [rows, ceil(cols / G)].
//   f16   IEEE 754 binary16, one per weight, rounded to nearest even; no
//         scales. Half float32's bytes with 11 significant bits: decode reads
//         every weight once per token, so it runs up to twice float32's speed
//         where float32 is bandwidth-bound, at a relative rounding error of
//         at most 2^-11 (weights below 2^-14 lose bits as subnormals).
//         Stored as uint16 [rows, cols].
// Dequantized (int8, int4): W ≈ q * s. Rounding to nearest bounds the error of every weight
// by s / 2, i.e. max|row| / 254 for int8 and max|group| / 14 for int4.
// A row or group of zeros gets scale 0 (and q 0), so it dequantizes to zeros.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ember/backend/cpu/packed_weights.h"

namespace ember::infer {

// f16 comes last so the other values keep their numbers (bench arguments use them).
enum class WeightFormat : uint8_t { f32, int8, int4, f16 };

const char* weight_format_name(WeightFormat f);  // "float32", "int8", "int4", "f16"
// "int8", "int4" or "f16" (and, with allow_float, "none" or "float32"); errors name `op`.
WeightFormat weight_format_from_name(const std::string& name, const std::string& op, bool allow_float = false);

// Columns per byte-packed row and groups per row of an int4 matrix.
inline int64_t int4_row_bytes(int64_t cols) { return (cols + 1) / 2; }
inline int64_t int4_groups(int64_t cols, int64_t group) { return (cols + group - 1) / group; }
// IEEE binary16 <-> float32, bit-exact and portable (the F16C instructions
// give the same results; the tests compare them). float_to_half rounds to
// nearest even; a finite value that rounds past 65504 becomes infinity.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
inline constexpr float kHalfMax = 65504.0f;

// Errors unless group is 32, 64 or 128 (the sizes the kernels are built and tested for).
void check_group_size(int64_t group, const std::string& op);

// One Linear weight as the runner and the kernels read it (no ownership).
struct LinearWeight {
  WeightFormat format = WeightFormat::f32;
  int64_t rows = 0, cols = 0;     // W is [rows, cols] = [out, in]
  int64_t group = 0;              // int4: columns per scale
  const void* data = nullptr;     // f32: float[rows * cols]; int8: int8_t[rows * cols];
                                  // int4: uint8_t[rows * int4_row_bytes(cols)]; f16: uint16_t[rows * cols]
  const float* scales = nullptr;  // int8: [rows]; int4: [rows, int4_groups(cols, group)]; f16: none
  const float* packed = nullptr;  // f32 only, may be null: W packed once (RunnerWeights::prepack) ...
  cpu::WeightLayout packed_layout = cpu::WeightLayout::none;  // ... in this layout (cpu/packed_weights.h)

  bool defined() const { return data != nullptr; }
  // Bytes a forward pass reads: the matrix and its scales.
  int64_t bytes() const;
};

// An owning quantized (int8, int4 or f16) matrix.
struct QuantizedMatrix {
  WeightFormat format = WeightFormat::int8;
  int64_t rows = 0, cols = 0, group = 0;
  std::vector<uint8_t> data;  // int8 values (as bytes), packed nibbles or f16 bit patterns, row-major
  std::vector<float> scales;  // empty for f16

  LinearWeight view() const { return {format, rows, cols, group, data.data(), scales.data(), nullptr}; }
};

// Quantizes a row-major float matrix [rows, cols]. `group` is used by int4
// only. Errors (naming `what`) on a non-finite weight, a bad group size, or
// (f16) a weight beyond float16's range.
QuantizedMatrix quantize_matrix(const float* w, int64_t rows, int64_t cols, WeightFormat format, int64_t group,
                                const std::string& what = "weight");

// Writes rows [row_begin, row_end) of W as float32, row-major, into `out`
// ([row_end - row_begin, cols]). Works for every format (f32 copies).
void dequantize_rows(const LinearWeight& w, int64_t row_begin, int64_t row_end, float* out);
std::vector<float> dequantize(const LinearWeight& w);

}  // namespace ember::infer
