// DType names, sizes and promotion.
#include "ember/core/dtype.h"

namespace ember {

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::f32: case DType::i32: return 4;
    case DType::f64: case DType::i64: return 8;
    case DType::bf16: case DType::f16: return 2;
    case DType::u8: case DType::b8: return 1;
  }
  fail("dtype", "unknown dtype ", int(dt));
}

std::string dtype_name(DType dt) {
  switch (dt) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::u8: return "uint8";
    case DType::b8: return "bool";
  }
  return "unknown";
}

DType dtype_from_name(const std::string& n) {
  if (n == "float32" || n == "f32" || n == "float") return DType::f32;
  if (n == "float64" || n == "f64" || n == "double") return DType::f64;
  if (n == "bfloat16" || n == "bf16") return DType::bf16;
  if (n == "float16" || n == "f16" || n == "half") return DType::f16;
  if (n == "int32" || n == "i32") return DType::i32;
  if (n == "int64" || n == "i64") return DType::i64;
  if (n == "uint8" || n == "u8") return DType::u8;
  if (n == "bool" || n == "b8") return DType::b8;
  fail("dtype", "unknown dtype name '", n,
       "' (expected float32, float64, bfloat16, float16, int32, int64, uint8 or bool)");
}

bool is_floating(DType dt) {
  return dt == DType::f32 || dt == DType::f64 || dt == DType::bf16 || dt == DType::f16;
}
bool is_integral(DType dt) { return !is_floating(dt); }

namespace {
int rank(DType dt) {
  switch (dt) {
    case DType::b8: return 0;
    case DType::u8: return 1;
    case DType::i32: return 2;
    case DType::i64: return 3;
    case DType::f16: return 4;
    case DType::bf16: return 5;
    case DType::f32: return 6;
    case DType::f64: return 7;
  }
  return 0;
}
}  // namespace

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  // bf16 with f16 has no exact common 16-bit type: use float32, as PyTorch does.
  if ((a == DType::bf16 && b == DType::f16) || (a == DType::f16 && b == DType::bf16)) return DType::f32;
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace ember
