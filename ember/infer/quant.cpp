// Quantization formats, quantizing and dequantizing (see quant.h).
#include "ember/infer/quant.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "ember/core/error.h"

namespace ember::infer {
namespace {

// Symmetric scale and codes for one stretch of weights: s = max|w| / qmax and
// q = round(w / s), clamped (w / s can round up past qmax by an ulp).
template <typename Store>
float quantize_span(const float* w, int64_t n, int qmax, Store&& store) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
  const float s = amax / float(qmax);
  for (int64_t i = 0; i < n; ++i) {
    // Dividing (rather than multiplying by 1 / s) makes max|w| / s exactly
    // qmax, so the largest weight always maps to ±qmax.
    const long q = s > 0 ? std::lround(w[i] / s) : 0;
    store(i, int(std::clamp<long>(q, -qmax, qmax)));
  }
  return s;
}

}  // namespace

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::f32: return "float32";
    case WeightFormat::int8: return "int8";
    case WeightFormat::int4: return "int4";
    case WeightFormat::f16: return "f16";
  }
  return "?";
}

WeightFormat weight_format_from_name(const std::string& name, const std::string& op, bool allow_float) {
  if (name == "int8") return WeightFormat::int8;
  if (name == "int4") return WeightFormat::int4;
  if (name == "f16") return WeightFormat::f16;
  if (allow_float && (name == "none" || name == "float32")) return WeightFormat::f32;
  fail(op, "unknown weight format '", name, "' (known: int8, int4, f16", allow_float ? ", none" : "", ")");
}

// Integer-only, so the result does not depend on the floating-point
// environment or on compiler flags.
uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) return uint16_t(sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u));  // NaN (quiet), inf
  // 65520 (0x477FF000) is the tie between 65504 and 2^16, which rounds to the
  // even 2^16: infinity.
  if (ax >= 0x477FF000u) return uint16_t(sign | 0x7C00u);
  const uint32_t e = ax >> 23;
  // Round `v`, holding `shift` bits more than the result, to nearest even.
  auto round_shift = [](uint32_t v, uint32_t shift) {
    const uint32_t h = v >> shift, rem = v & ((1u << shift) - 1), half = 1u << (shift - 1);
    return h + ((rem > half || (rem == half && (h & 1))) ? 1u : 0u);
  };
  if (e < 113) {
    // Below 2^-14: a half subnormal, h * 2^-24 with h = m * 2^(e - 126) (m
    // with its implicit bit). Past 24 bits of shift even the largest m rounds to 0.
    const uint32_t shift = 126 - e;
    if (shift > 24) return uint16_t(sign);
    return uint16_t(sign | round_shift((ax & 0x7FFFFFu) | 0x800000u, shift));  // 0x400 = the smallest normal
  }
  // Normal: rebias the exponent (127 -> 15) and round the mantissa's 13 extra
  // bits; a carry runs into the exponent, as it should.
  return uint16_t(sign | round_shift(((e - 112) << 23) | (ax & 0x7FFFFFu), 13));
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  int32_t e = (h >> 10) & 0x1F;
  uint32_t m = h & 0x3FFu;
  if (e == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (m << 13));
  if (e == 0) {
    if (m == 0) return std::bit_cast<float>(sign);
    e = 1;  // subnormal: normalise m * 2^-24
    while (!(m & 0x400u)) m <<= 1, --e;
    m &= 0x3FFu;
  }
  return std::bit_cast<float>(sign | (uint32_t(e + 112) << 23) | (m << 13));
}

void check_group_size(int64_t group, const std::string& op) {
  if (group != 32 && group != 64 && group != 128)
    fail(op, "int4 group size must be 32, 64 or 128, got ", group);
}

int64_t LinearWeight::bytes() const {
  switch (format) {
    case WeightFormat::f32: return rows * cols * 4;
    case WeightFormat::int8: return rows * cols + rows * 4;
    case WeightFormat::int4: return rows * int4_row_bytes(cols) + rows * int4_groups(cols, group) * 4;
    case WeightFormat::f16: return rows * cols * 2;
  }
  return 0;
}

QuantizedMatrix quantize_matrix(const float* w, int64_t rows, int64_t cols, WeightFormat format, int64_t group,
                                const std::string& what) {
  const char* op = "quantize";
  if (format == WeightFormat::f32) fail(op, what, ": float32 is not a quantized format");
  if (rows < 1 || cols < 1) fail(op, what, ": empty matrix [", rows, ", ", cols, "]");
  if (format == WeightFormat::int4) check_group_size(group, op);
  QuantizedMatrix q;
  q.format = format;
  q.rows = rows, q.cols = cols, q.group = format == WeightFormat::int4 ? group : 0;
  // A non-finite weight would give a non-finite scale and poison its whole row
  // or group: refuse it, naming where.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      if (!std::isfinite(w[r * cols + c]))
        fail(op, what, ": weight [", r, ", ", c, "] is ", w[r * cols + c], "; cannot quantize a non-finite value");
  if (format == WeightFormat::f16) {
    q.data.resize(size_t(rows * cols) * 2);
    uint16_t* d = reinterpret_cast<uint16_t*>(q.data.data());
    for (int64_t i = 0; i < rows * cols; ++i) {
      d[i] = float_to_half(w[i]);
      // A weight that rounds to infinity would poison every product with it.
      if ((d[i] & 0x7C00u) == 0x7C00u)
        fail(op, what, ": weight [", i / cols, ", ", i % cols, "] is ", w[i], ", beyond float16's range (", kHalfMax, ")");
    }
    return q;
  }
  if (format == WeightFormat::int8) {
    q.data.resize(size_t(rows * cols));
    q.scales.resize(size_t(rows));
    int8_t* d = reinterpret_cast<int8_t*>(q.data.data());
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; ++r)
      q.scales[size_t(r)] = quantize_span(w + r * cols, cols, 127, [&](int64_t i, int v) { d[r * cols + i] = int8_t(v); });
    return q;
  }
  const int64_t rb = int4_row_bytes(cols), ng = int4_groups(cols, group);
  q.data.assign(size_t(rows * rb), uint8_t(0x88));  // nibble 8 = value 0, also for the pad nibble
  q.scales.resize(size_t(rows * ng));
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = q.data.data() + r * rb;
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t c0 = g * group, n = std::min(group, cols - c0);
      q.scales[size_t(r * ng + g)] = quantize_span(w + r * cols + c0, n, 7, [&](int64_t i, int v) {
        const int64_t c = c0 + i;
        const uint8_t nib = uint8_t(v + 8);
        uint8_t& b = row[c / 2];
        b = (c % 2 == 0) ? uint8_t((b & 0xF0) | nib) : uint8_t((b & 0x0F) | (nib << 4));
      });
    }
  }
  return q;
}

void dequantize_rows(const LinearWeight& w, int64_t row_begin, int64_t row_end, float* out) {
  if (row_begin < 0 || row_end > w.rows || row_begin > row_end)
    fail("dequantize", "rows [", row_begin, ", ", row_end, ") outside [0, ", w.rows, ")");
  const int64_t k = w.cols;
  switch (w.format) {
    case WeightFormat::f32:
      std::memcpy(out, static_cast<const float*>(w.data) + row_begin * k, size_t((row_end - row_begin) * k) * 4);
      return;
    case WeightFormat::int8: {
      const int8_t* d = static_cast<const int8_t*>(w.data);
      for (int64_t r = row_begin; r < row_end; ++r) {
        const float s = w.scales[r];
        const int8_t* q = d + r * k;
        float* o = out + (r - row_begin) * k;
#pragma omp simd
        for (int64_t c = 0; c < k; ++c) o[c] = float(q[c]) * s;
      }
      return;
    }
    case WeightFormat::int4: {
      const int64_t rb = int4_row_bytes(k), ng = int4_groups(k, w.group);
      const uint8_t* d = static_cast<const uint8_t*>(w.data);
      for (int64_t r = row_begin; r < row_end; ++r) {
        const uint8_t* q = d + r * rb;
        const float* s = w.scales + r * ng;
        float* o = out + (r - row_begin) * k;
        for (int64_t c = 0; c < k; ++c) {
          const int nib = (c % 2 == 0) ? (q[c / 2] & 0x0F) : (q[c / 2] >> 4);
          o[c] = float(nib - 8) * s[c / w.group];
        }
      }
      return;
    }
    case WeightFormat::f16: {
      const uint16_t* d = static_cast<const uint16_t*>(w.data) + row_begin * k;
      for (int64_t i = 0; i < (row_end - row_begin) * k; ++i) out[i] = half_to_float(d[i]);
      return;
    }
  }
}

std::vector<float> dequantize(const LinearWeight& w) {
  std::vector<float> out(size_t(w.rows * w.cols));
  dequantize_rows(w, 0, w.rows, out.data());
  return out;
}

}  // namespace ember::infer
