// Element types of tensors and the compile-time dispatch from a DType to a C++ type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ember/core/error.h"
#include "ember/core/half.h"

namespace ember {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8, b8 };

size_t dtype_size(DType dt);
std::string dtype_name(DType dt);           // "float32", "bfloat16", "bool", ...
DType dtype_from_name(const std::string& name);  // accepts the names above and f32/bf16/i64 short forms
bool is_floating(DType dt);
bool is_integral(DType dt);  // integer types and bool
// NumPy/PyTorch-style promotion for binary ops (float beats int, wider beats narrower).
DType promote_types(DType a, DType b);

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<float16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::b8; };

// The type arithmetic is done in: float for the 16-bit floats, the type itself otherwise.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<bfloat16> { using type = float; };
template <> struct compute_type<float16> { using type = float; };
template <typename T> using compute_t = typename compute_type<T>::type;

// Calls fn.template operator()<T>() with T the C++ type of dt.
//   visit_dtype(dt, "op", [&]<typename T>() { ... });
template <typename Fn>
decltype(auto) visit_dtype(DType dt, const char* where, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    case DType::bf16: return fn.template operator()<bfloat16>();
    case DType::f16: return fn.template operator()<float16>();
    case DType::i32: return fn.template operator()<int32_t>();
    case DType::i64: return fn.template operator()<int64_t>();
    case DType::u8: return fn.template operator()<uint8_t>();
    case DType::b8: return fn.template operator()<bool>();
  }
  fail(where, "unknown dtype ", int(dt));
}

// Same, for floating-point dtypes only; other dtypes are an error naming `where`.
template <typename Fn>
decltype(auto) visit_floating(DType dt, const char* where, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    case DType::bf16: return fn.template operator()<bfloat16>();
    case DType::f16: return fn.template operator()<float16>();
    default: fail(where, "expects a floating-point tensor, got ", dtype_name(dt));
  }
}

}  // namespace ember
