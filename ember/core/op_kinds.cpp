// Names of the elementwise and reduction op kinds (used in errors, graph dumps, attrs).
#include "ember/core/op_kinds.h"

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

}  // namespace ember
