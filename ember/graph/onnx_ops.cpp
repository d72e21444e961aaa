// ONNX mappings of ember's primitives (opset 17): elementwise, linear algebra,
// movement, indexing, reductions, creation and fused_elementwise. Attention and
// the norms live in onnx_attention.cpp. Each mapping reproduces the primitive's
// exact semantics (see the primitive's source in ember/ops/), with formulas
// where opset 17 has no single operator (rms_norm, gelu_tanh, silu, ...).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include "ember/core/error.h"
#include "ember/graph/fused_elementwise.h"
#include "ember/graph/onnx_ops.h"
#include "ember/ops/creation.h"

namespace ember::graph::onnx_detail {
namespace {

constexpr const char* kOp = "onnx export";

const AttrValue& attr_at(const OnnxNodeContext& c, const char* key) {
  auto it = c.attrs.find(key);
  if (it == c.attrs.end()) fail(kOp, "primitive '", c.prim_name(), "' has no attribute '", key, "'");
  return it->second;
}

// Reshape to a static shape.
std::string reshape_to(OnnxBuilder& b, const std::string& x, const Shape& shape, const std::string& hint) {
  return b.op("Reshape", {x, b.const_i64(shape)}, {}, hint);
}

// A value of `dt` clamped into that dtype's range (ONNX constants must hold it exactly).
double fit_dtype(double v, DType dt) {
  if (is_floating(dt) || std::isnan(v)) return v;
  double lo = 0, hi = 1;
  switch (dt) {
    case DType::i32: lo = double(std::numeric_limits<int32_t>::min()), hi = double(std::numeric_limits<int32_t>::max()); break;
    case DType::i64: lo = -9.2233720368547748e18, hi = 9.2233720368547748e18; break;
    case DType::u8: lo = 0, hi = 255; break;
    default: break;
  }
  return std::min(std::max(v, lo), hi);
}

// ---- elementwise ----------------------------------------------------------------

void map_unary(OnnxNodeContext& c) {
  UnaryOp op;
  parse_unary_op(c.prim_name(), op);
  emit_unary(c.b, op, c.in[0], c.in_spec(0).dtype, c.out[0]);
}

void map_binary(OnnxNodeContext& c) {
  BinaryOp op;
  parse_binary_op(c.prim_name(), op);
  emit_binary(c.b, op, c.in[0], c.in[1], c.out[0]);
}

void map_where(OnnxNodeContext& c) { c.b.node("Where", {c.in[0], c.in[1], c.in[2]}, {c.out[0]}); }

void map_clamp(OnnxNodeContext& c) {
  DType dt = c.in_spec(0).dtype;
  std::string lo = c.b.const_scalar(fit_dtype(c.attr_double("lo"), dt), dt);
  std::string hi = c.b.const_scalar(fit_dtype(c.attr_double("hi"), dt), dt);
  c.b.node("Clip", {c.in[0], lo, hi}, {c.out[0]});
}

void map_cast(OnnxNodeContext& c) {
  c.b.node("Cast", {c.in[0]}, {c.out[0]}, {attr_i("to", onnx_dtype(c.out_spec(0).dtype))});
}

void map_identity(OnnxNodeContext& c) { c.b.node("Identity", {c.in[0]}, {c.out[0]}); }

void map_full(OnnxNodeContext& c) {
  const TensorSpec& s = c.out_spec(0);
  Tensor value = full({1}, fit_dtype(c.attr_double("value"), s.dtype), s.dtype);
  c.b.node("ConstantOfShape", {c.b.const_i64(s.shape)}, {c.out[0]}, {attr_t("value", value)});
}

// ---- linear algebra ---------------------------------------------------------------

void map_matmul(OnnxNodeContext& c) { c.b.node("MatMul", {c.in[0], c.in[1]}, {c.out[0]}); }

// y = x Wᵀ + b over the last dimension: one Gemm (transB) on x seen as [rows, in].
void map_linear(OnnxNodeContext& c) {
  const Shape& xs = c.in_spec(0).shape;
  const Shape& ys = c.out_spec(0).shape;
  std::vector<std::string> gemm_in{c.in[0], c.in[1]};
  if (c.in.size() > 2) gemm_in.push_back(c.in[2]);
  std::vector<OnnxAttr> attrs{attr_i("transB", 1)};
  if (xs.size() == 2) {
    c.b.node("Gemm", gemm_in, {c.out[0]}, attrs);
    return;
  }
  int64_t n_in = xs.back(), rows = n_in == 0 ? 0 : numel(xs) / n_in;
  gemm_in[0] = reshape_to(c.b, c.in[0], {rows, n_in}, c.out[0] + "_rows");
  std::string y2 = c.b.op("Gemm", gemm_in, attrs, c.out[0] + "_gemm");
  c.b.node("Reshape", {y2, c.b.const_i64(ys)}, {c.out[0]});
}

// ---- movement -----------------------------------------------------------------------

void map_reshape(OnnxNodeContext& c) {
  const Shape& s = c.out_spec(0).shape;
  bool has_zero = false;
  for (int64_t d : s) has_zero |= d == 0;
  std::vector<OnnxAttr> attrs;
  if (has_zero) attrs.push_back(attr_i("allowzero", 1));  // a 0 means "size 0", not "copy"
  c.b.node("Reshape", {c.in[0], c.b.const_i64(s)}, {c.out[0]}, attrs);
}

void map_permute(OnnxNodeContext& c) {
  c.b.node("Transpose", {c.in[0]}, {c.out[0]}, {attr_ints("perm", c.attr_ints("dims"))});
}

void map_slice(OnnxNodeContext& c) {
  int64_t start = c.attr_int("start"), length = c.attr_int("length"), step = c.attr_int("step");
  int64_t end = length > 0 ? start + (length - 1) * step + 1 : start;
  OnnxBuilder& b = c.b;
  b.node("Slice", {c.in[0], b.const_i64({start}), b.const_i64({end}), b.const_i64({c.attr_int("axis")}), b.const_i64({step})},
         {c.out[0]});
}

void map_broadcast_to(OnnxNodeContext& c) {
  c.b.node("Expand", {c.in[0], c.b.const_i64(c.out_spec(0).shape)}, {c.out[0]});
}

void map_concat(OnnxNodeContext& c) { c.b.node("Concat", c.in, {c.out[0]}, {attr_i("axis", c.attr_int("axis"))}); }

// ---- indexing ------------------------------------------------------------------------

void map_embedding(OnnxNodeContext& c) { c.b.node("Gather", {c.in[0], c.in[1]}, {c.out[0]}, {attr_i("axis", 0)}); }

void map_index_select(OnnxNodeContext& c) {
  // A 0-D index keeps the axis (size 1) in ember; ONNX Gather would drop it.
  std::string index = c.in[1];
  if (c.in_spec(1).shape.empty()) index = reshape_to(c.b, index, {1}, c.out[0] + "_index");
  c.b.node("Gather", {c.in[0], index}, {c.out[0]}, {attr_i("axis", c.attr_int("axis"))});
}

void map_gather(OnnxNodeContext& c) {
  c.b.node("GatherElements", {c.in[0], c.in[1]}, {c.out[0]}, {attr_i("axis", c.attr_int("axis"))});
}

void map_triangle(OnnxNodeContext& c) {
  bool upper = std::strcmp(c.prim_name(), "triu") == 0;
  c.b.node("Trilu", {c.in[0], c.b.const_scalar(double(c.attr_int("k")), DType::i64)}, {c.out[0]},
           {attr_i("upper", upper)});
}

// ---- reductions and normalisations along an axis ------------------------------------

void map_reduce(OnnxNodeContext& c) {
  std::vector<int64_t> axes = c.attr_ints("axes");
  if (axes.empty()) {  // a 0-D input reduced over nothing: a copy
    c.b.node("Identity", {c.in[0]}, {c.out[0]});
    return;
  }
  int64_t keep = c.attr_int("keepdim");
  std::string name = c.prim_name();
  if (name == "sum") {  // opset 13+: axes is an input
    c.b.node("ReduceSum", {c.in[0], c.b.const_i64(axes)}, {c.out[0]}, {attr_i("keepdims", keep)});
    return;
  }
  const char* op = name == "max" ? "ReduceMax" : name == "min" ? "ReduceMin" : "ReduceProd";
  c.b.node(op, {c.in[0]}, {c.out[0]}, {attr_ints("axes", axes), attr_i("keepdims", keep)});  // opset <= 17: an attribute
}

void map_arg_reduce(OnnxNodeContext& c) {
  if (c.in_spec(0).shape.empty()) {  // ember: the index into a 0-D tensor is 0
    c.b.node("ConstantOfShape", {c.b.const_i64({})}, {c.out[0]}, {attr_t("value", full({1}, 0.0, DType::i64))});
    return;
  }
  const char* op = std::strcmp(c.prim_name(), "argmax") == 0 ? "ArgMax" : "ArgMin";
  c.b.node(op, {c.in[0]}, {c.out[0]},
           {attr_i("axis", c.attr_int("axis")), attr_i("keepdims", c.attr_int("keepdim")), attr_i("select_last_index", 0)});
}

void map_softmax(OnnxNodeContext& c) {
  const char* op = std::strcmp(c.prim_name(), "softmax") == 0 ? "Softmax" : "LogSoftmax";
  c.b.node(op, {c.in[0]}, {c.out[0]}, {attr_i("axis", c.attr_int("axis"))});
}

void map_cumsum(OnnxNodeContext& c) {
  c.b.node("CumSum", {c.in[0], c.b.const_scalar(double(c.attr_int("axis")), DType::i64)}, {c.out[0]},
           {attr_i("reverse", c.attr_int("reverse"))});
}

// ---- fused_elementwise: its program, one ONNX node per instruction --------------------

void map_fused_elementwise(OnnxNodeContext& c) {
  const auto* prim = dynamic_cast<const FusedElementwisePrim*>(c.node.prim.get());
  if (!prim) fail(kOp, "a 'fused_elementwise' node is not a FusedElementwisePrim");
  const Shape& shape = c.out_spec(0).shape;
  const std::vector<int64_t> outputs = c.attr_ints("outputs");
  std::vector<std::string> reg = c.in;
  std::vector<Shape> reg_shape;
  for (size_t i = 0; i < c.in.size(); ++i) reg_shape.push_back(c.in_spec(i).shape);
  // An output register that is written by an instruction, once, gets its output's name directly.
  std::map<int64_t, size_t> direct;
  for (size_t k = 0; k < outputs.size(); ++k) {
    bool unique = std::count(outputs.begin(), outputs.end(), outputs[k]) == 1;
    if (unique && outputs[k] >= int64_t(c.in.size())) direct[outputs[k]] = k;
  }
  for (const FusedInstr& ins : prim->program()) {
    int64_t r = int64_t(reg.size());
    Shape s = ins.binary ? broadcast_shapes(reg_shape[size_t(ins.a)], reg_shape[size_t(ins.b)], kOp)
                         : reg_shape[size_t(ins.a)];
    auto d = direct.find(r);
    // Registers narrower than the output (made from broadcast inputs only) leave through Expand below.
    std::string y = d != direct.end() && s == shape ? c.out[d->second] : c.b.fresh(c.out[0] + "_r" + std::to_string(r));
    if (ins.binary)
      emit_binary(c.b, ins.binary_op, reg[size_t(ins.a)], reg[size_t(ins.b)], y);
    else
      emit_unary(c.b, ins.unary_op, reg[size_t(ins.a)], DType::f32, y);
    reg.push_back(y);
    reg_shape.push_back(s);
  }
  for (size_t k = 0; k < outputs.size(); ++k) {
    size_t r = size_t(outputs[k]);
    if (reg[r] == c.out[k]) continue;
    if (reg_shape[r] == shape)
      c.b.node("Identity", {reg[r]}, {c.out[k]});
    else
      c.b.node("Expand", {reg[r], c.b.const_i64(shape)}, {c.out[k]});
  }
}

using Mapper = std::function<void(OnnxNodeContext&)>;

const std::map<std::string, Mapper>& mappers() {
  static const std::map<std::string, Mapper> table = [] {
    std::map<std::string, Mapper> m;
    for (int i = 0; i <= int(UnaryOp::logical_not); ++i) m[unary_op_name(UnaryOp(i))] = map_unary;
    for (int i = 0; i <= int(BinaryOp::logical_or); ++i) m[binary_op_name(BinaryOp(i))] = map_binary;
    m["where"] = map_where;
    m["clamp"] = map_clamp;
    m["cast"] = map_cast;
    m["to_device"] = map_identity;
    m["full"] = map_full;
    m["matmul"] = map_matmul;
    m["linear"] = map_linear;
    m["reshape"] = map_reshape;
    m["permute"] = map_permute;
    m["slice"] = map_slice;
    m["broadcast_to"] = map_broadcast_to;
    m["concat"] = map_concat;
    m["embedding"] = map_embedding;
    m["index_select"] = map_index_select;
    m["gather"] = map_gather;
    m["tril"] = m["triu"] = map_triangle;
    for (const char* r : {"sum", "max", "min", "prod"}) m[r] = map_reduce;
    m["argmax"] = m["argmin"] = map_arg_reduce;
    m["softmax"] = m["log_softmax"] = map_softmax;
    m["cumsum"] = map_cumsum;
    m["layer_norm"] = [](OnnxNodeContext& c) { emit_norm(c, false); };
    m["rms_norm"] = [](OnnxNodeContext& c) { emit_norm(c, true); };
    m["scaled_dot_product_attention"] = emit_attention;
    m["fused_elementwise"] = map_fused_elementwise;
    return m;
  }();
  return table;
}

}  // namespace

int64_t OnnxNodeContext::attr_int(const char* key) const {
  const AttrValue& v = attr_at(*this, key);
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  fail(kOp, "attribute '", key, "' of '", prim_name(), "' is not an integer");
}

double OnnxNodeContext::attr_double(const char* key) const {
  const AttrValue& v = attr_at(*this, key);
  if (const double* d = std::get_if<double>(&v)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(&v)) return double(*i);
  fail(kOp, "attribute '", key, "' of '", prim_name(), "' is not a number");
}

std::vector<int64_t> OnnxNodeContext::attr_ints(const char* key) const {
  const AttrValue& v = attr_at(*this, key);
  if (const auto* l = std::get_if<std::vector<int64_t>>(&v)) return *l;
  fail(kOp, "attribute '", key, "' of '", prim_name(), "' is not a list of integers");
}

bool emit_onnx_node(OnnxNodeContext& ctx) {
  auto it = mappers().find(ctx.prim_name());
  if (it == mappers().end()) return false;
  it->second(ctx);
  return true;
}

void emit_unary(OnnxBuilder& b, UnaryOp op, const std::string& x, DType dt, const std::string& y) {
  auto k = [&](double v) { return b.const_scalar(v, dt); };
  auto tmp = [&](const char* op_type, std::vector<std::string> in, const char* suffix) {
    return b.op(op_type, in, {}, y + suffix);
  };
  const char* simple = nullptr;
  switch (op) {
    case UnaryOp::neg: simple = "Neg"; break;
    case UnaryOp::abs: simple = "Abs"; break;
    case UnaryOp::exp: simple = "Exp"; break;
    case UnaryOp::log: simple = "Log"; break;
    case UnaryOp::sqrt: simple = "Sqrt"; break;
    case UnaryOp::tanh: simple = "Tanh"; break;
    case UnaryOp::sigmoid: simple = "Sigmoid"; break;
    case UnaryOp::relu: simple = "Relu"; break;
    case UnaryOp::sin: simple = "Sin"; break;
    case UnaryOp::cos: simple = "Cos"; break;
    case UnaryOp::erf: simple = "Erf"; break;
    case UnaryOp::sign: simple = "Sign"; break;
    case UnaryOp::reciprocal: simple = "Reciprocal"; break;
    case UnaryOp::rsqrt: b.node("Reciprocal", {tmp("Sqrt", {x}, "_sqrt")}, {y}); return;
    case UnaryOp::square: b.node("Mul", {x, x}, {y}); return;
    case UnaryOp::silu: b.node("Mul", {x, tmp("Sigmoid", {x}, "_sigmoid")}, {y}); return;
    case UnaryOp::gelu: {  // 0.5 x (1 + erf(x / sqrt 2))
      std::string e = tmp("Erf", {tmp("Mul", {x, k(0.70710678118654752440)}, "_scaled")}, "_erf");
      b.node("Mul", {tmp("Mul", {x, k(0.5)}, "_half"), tmp("Add", {e, k(1.0)}, "_1p")}, {y});
      return;
    }
    case UnaryOp::gelu_tanh: {  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      std::string x3 = tmp("Mul", {x, tmp("Mul", {x, x}, "_x2")}, "_x3");
      std::string inner = tmp("Add", {x, tmp("Mul", {x3, k(0.044715)}, "_cubic")}, "_inner");
      std::string t = tmp("Tanh", {tmp("Mul", {inner, k(0.79788456080286535588)}, "_arg")}, "_tanh");
      b.node("Mul", {tmp("Mul", {x, k(0.5)}, "_half"), tmp("Add", {t, k(1.0)}, "_1p")}, {y});
      return;
    }
    case UnaryOp::logical_not:
      if (dt == DType::b8)
        b.node("Not", {x}, {y});
      else  // any dtype: x == 0
        b.node("Equal", {x, k(0.0)}, {y});
      return;
  }
  b.node(simple, {x}, {y});
}

void emit_binary(OnnxBuilder& b, BinaryOp op, const std::string& a, const std::string& c, const std::string& y) {
  const char* onnx_op = nullptr;
  switch (op) {
    case BinaryOp::add: onnx_op = "Add"; break;
    case BinaryOp::sub: onnx_op = "Sub"; break;
    case BinaryOp::mul: onnx_op = "Mul"; break;
    case BinaryOp::div: onnx_op = "Div"; break;
    case BinaryOp::pow: onnx_op = "Pow"; break;
    case BinaryOp::maximum: onnx_op = "Max"; break;
    case BinaryOp::minimum: onnx_op = "Min"; break;
    case BinaryOp::eq: onnx_op = "Equal"; break;
    case BinaryOp::lt: onnx_op = "Less"; break;
    case BinaryOp::le: onnx_op = "LessOrEqual"; break;
    case BinaryOp::gt: onnx_op = "Greater"; break;
    case BinaryOp::ge: onnx_op = "GreaterOrEqual"; break;
    case BinaryOp::logical_and: onnx_op = "And"; break;
    case BinaryOp::logical_or: onnx_op = "Or"; break;
    case BinaryOp::ne: b.node("Not", {b.op("Equal", {a, c}, {}, y + "_eq")}, {y}); return;
  }
  b.node(onnx_op, {a, c}, {y});
}

void emit_cast_to(OnnxBuilder& b, const std::string& from, DType have, DType want, const std::string& to) {
  if (have == want)
    b.node("Identity", {from}, {to});
  else
    b.node("Cast", {from}, {to}, {attr_i("to", onnx_dtype(want))});
}

}  // namespace ember::graph::onnx_detail
