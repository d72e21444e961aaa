// The kinds of elementwise and reduction computation, shared by the op layer
// (which builds primitives) and every backend (which implements them).
#pragma once

#include <cstdint>

namespace ember {

enum class UnaryOp : uint8_t {
  neg, abs, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, gelu, gelu_tanh, silu,
  sin, cos, erf, sign, square, reciprocal, logical_not
};
enum class BinaryOp : uint8_t {
  add, sub, mul, div, pow, maximum, minimum,
  eq, ne, lt, le, gt, ge, logical_and, logical_or
};
enum class ReduceOp : uint8_t { sum, max, min, prod };

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);
const char* reduce_op_name(ReduceOp op);
// Inverse of the names above (a primitive's name is its op kind's name): false
// for a name that is not one (graph passes use this to recognise elementwise nodes).
bool parse_unary_op(const char* name, UnaryOp& op);
bool parse_binary_op(const char* name, BinaryOp& op);
constexpr bool is_comparison(BinaryOp op) { return op >= BinaryOp::eq; }

}  // namespace ember
