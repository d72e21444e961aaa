// 16-bit floating-point storage types: bfloat16 and IEEE float16.
//
// They are storage formats: arithmetic converts to float, computes, and rounds
// back (round-to-nearest-even), which is what a mixed-precision path needs.
#pragma once

#include <cstdint>
#include <cstring>

namespace ember {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  bfloat16(float f) : bits(from_float(f)) {}  // NOLINT: implicit by design, like a float type
  operator float() const { return bits_float(uint32_t(bits) << 16); }

  static uint16_t from_float(float f) {
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);                           // nearest even
    return uint16_t((u + rounding) >> 16);
  }
  static bfloat16 from_bits(uint16_t b) {
    bfloat16 h;
    h.bits = b;
    return h;
  }
};

struct float16 {
  uint16_t bits = 0;
  float16() = default;
  float16(float f) : bits(from_float(f)) {}  // NOLINT
  operator float() const { return to_float(bits); }

  static float to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf / nan
    if (exp == 0) {
      if (mant == 0) return bits_float(sign);
      // subnormal: value = mant * 2^-24
      float v = float(mant) * (1.0f / 16777216.0f);
      return sign ? -v : v;
    }
    return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
  }
  static uint16_t from_float(float f) {
    uint32_t u = float_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);        // nan
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);       // overflow -> inf (after rounding)
    if (abs < 0x38800000u) {                                        // subnormal or zero in half
      // Scale into the subnormal range and round to nearest even via float addition.
      float magnitude = bits_float(abs);
      float shifted = magnitude + 0.5f;  // 0.5 = 2^-1: ulp there is 2^-24, the half subnormal step
      return uint16_t(sign | (float_bits(shifted) - float_bits(0.5f)));
    }
    uint32_t mant_odd = (abs >> 13) & 1u;
    abs += 0xfffu + mant_odd;  // round to nearest even at bit 13
    return uint16_t(sign | ((abs - (112u << 23)) >> 13));
  }
  static float16 from_bits(uint16_t b) {
    float16 h;
    h.bits = b;
    return h;
  }
};

}  // namespace ember
