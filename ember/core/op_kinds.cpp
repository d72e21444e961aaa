// Names of the elementwise and reduction op kinds (used in errors, graph dumps, attrs).
#include "ember/core/op_kinds.h"

#include <cstring>

namespace ember {

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {"neg",  "abs", "exp",  "log", "sqrt", "rsqrt",  "tanh",
                                "sigmoid", "relu", "gelu", "gelu_tanh", "silu", "sin", "cos",
                                "erf",  "sign", "square", "reciprocal", "logical_not"};
  return names[int(op)];
}

const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                "ne",  "lt",  "le",  "gt",  "ge",  "logical_and", "logical_or"};
  return names[int(op)];
}

const char* reduce_op_name(ReduceOp op) {
  static const char* names[] = {"sum", "max", "min", "prod"};
  return names[int(op)];
}

bool parse_unary_op(const char* name, UnaryOp& op) {
  for (int i = 0; i <= int(UnaryOp::logical_not); ++i)
    if (std::strcmp(name, unary_op_name(UnaryOp(i))) == 0) return op = UnaryOp(i), true;
  return false;
}

bool parse_binary_op(const char* name, BinaryOp& op) {
  for (int i = 0; i <= int(BinaryOp::logical_or); ++i)
    if (std::strcmp(name, binary_op_name(BinaryOp(i))) == 0) return op = BinaryOp(i), true;
  return false;
}

}  // namespace ember
